import { z } from 'zod';
import { type Db, sql } from './database.ts';

export async function pingDatabase(db: Db): Promise<void> {
  await db.oneFirst(sql.type(z.object({ ok: z.number() }))`SELECT 1 AS ok`);
}
