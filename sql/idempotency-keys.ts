import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

export type IdempotencyClaim =
  | { state: 'claimed' }
  | { state: 'replay'; status: number; body: unknown }
  | { state: 'in_flight' }
  | { state: 'mismatch' };

const keyRow = z.object({
  request_hash: z.string(),
  state: z.enum(['in_flight', 'done']),
  response_status: z.number().nullable(),
  response_body: z.unknown(),
});

/**
 * Claims an Idempotency-Key for one request. The claim is committed on its own, so a concurrent request
 * with the same key sees it in flight (409) instead of waiting. A claim left behind by a crashed process
 * can be taken over once it is older than `staleAfterMs`.
 */
export async function claimIdempotencyKey(
  db: Db,
  k: { apiKeyId: number; key: string; requestHash: string; staleAfterMs: number },
): Promise<IdempotencyClaim> {
  const claimed = await db.maybeOne(sql.type(z.object({ key: z.string() }))`
    INSERT INTO idempotency_keys (api_key_id, key, request_hash, state)
    VALUES (${k.apiKeyId}, ${k.key}, ${k.requestHash}, 'in_flight')
    ON CONFLICT (api_key_id, key) DO UPDATE SET locked_at = clock_timestamp()
      WHERE idempotency_keys.state = 'in_flight'
        AND idempotency_keys.request_hash = EXCLUDED.request_hash
        AND idempotency_keys.locked_at < clock_timestamp() - make_interval(secs => ${k.staleAfterMs / 1000})
    RETURNING key`);
  if (claimed) return { state: 'claimed' };
  // A separate statement: it sees the row a concurrent claim has just committed, which the INSERT's
  // snapshot could not.
  const row = await db.maybeOne(sql.type(keyRow)`
    SELECT request_hash, state, response_status, response_body
    FROM idempotency_keys WHERE api_key_id = ${k.apiKeyId} AND key = ${k.key}`);
  if (!row) return claimIdempotencyKey(db, k); // released between the two statements: try again
  if (row.request_hash !== k.requestHash) return { state: 'mismatch' };
  if (row.state === 'in_flight') return { state: 'in_flight' };
  return { state: 'replay', status: row.response_status ?? 200, body: row.response_body };
}

export type IdempotentAnswer = { apiKeyId: number; key: string; status: number; body: unknown };

/** The UPDATE that stores a claimed key's response: a statement, or a step of a larger one (insertOrder). */
export function storeAnswer(k: IdempotentAnswer) {
  return sql.fragment`
    UPDATE idempotency_keys
    SET state = 'done', response_status = ${k.status}, response_body = ${sql.jsonb(k.body as never)}
    WHERE api_key_id = ${k.apiKeyId} AND key = ${k.key} AND state = 'in_flight'`;
}

/** Stores the response, in the same transaction as the work it describes. */
export async function completeIdempotencyKey(tx: Tx, k: IdempotentAnswer): Promise<void> {
  await tx.query(sql.typeAlias('void')`${storeAnswer(k)}`);
}

/** Lets the client try again with the same key after a request that did nothing (it failed). */
export async function releaseIdempotencyKey(db: Db, k: { apiKeyId: number; key: string }): Promise<void> {
  await db.query(sql.typeAlias('void')`
    DELETE FROM idempotency_keys WHERE api_key_id = ${k.apiKeyId} AND key = ${k.key} AND state = 'in_flight'`);
}
