import { z } from 'zod';
import { type Db, sql } from './database.ts';

const deadLetterCount = z.object({ status: z.string(), count: z.coerce.number() });

/** Dead letters per status, for the metrics scrape (runtime/metrics.ts); statuses with none are absent. */
export async function countDeadLettersByStatus(db: Db): Promise<ReadonlyArray<z.infer<typeof deadLetterCount>>> {
  return db.any(sql.type(deadLetterCount)`
    SELECT status, count(*) AS count FROM dead_letters GROUP BY status
  `);
}
