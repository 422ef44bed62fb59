import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

/** A key some request has already: its stored answer, a different body, or still in flight. */
export type TakenKey =
  | { state: 'replay'; status: number; body: unknown }
  | { state: 'in_flight' }
  | { state: 'mismatch' };
export type IdempotencyClaim = { state: 'claimed' } | TakenKey;

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
      WHERE ${takeOverStale(k.staleAfterMs)}
    RETURNING key`);
  if (claimed) return { state: 'claimed' };
  return (await readIdempotencyKey(db, k)) ?? claimIdempotencyKey(db, k); // released meanwhile: again
}

/**
 * What a key that is taken says to a request: its stored answer, another body, or still in flight; null
 * when there is no such key. A statement of its own: it sees the row a concurrent request has just
 * committed, which the snapshot of that request's INSERT could not.
 */
export async function readIdempotencyKey(
  db: Db,
  k: { apiKeyId: number; key: string; requestHash: string },
): Promise<TakenKey | null> {
  const row = await db.maybeOne(sql.type(keyRow)`
    SELECT request_hash, state, response_status, response_body
    FROM idempotency_keys WHERE api_key_id = ${k.apiKeyId} AND key = ${k.key}`);
  if (!row) return null;
  if (row.request_hash !== k.requestHash) return { state: 'mismatch' };
  if (row.state === 'in_flight') return { state: 'in_flight' };
  return { state: 'replay', status: row.response_status ?? 200, body: row.response_body };
}

/** A claim left in flight by a crashed process, for the same request, may be taken over once stale. */
function takeOverStale(staleAfterMs: number) {
  return sql.fragment`idempotency_keys.state = 'in_flight'
        AND idempotency_keys.request_hash = EXCLUDED.request_hash
        AND idempotency_keys.locked_at < clock_timestamp() - make_interval(secs => ${staleAfterMs / 1000})`;
}

export type IdempotentAnswer = { apiKeyId: number; key: string; status: number; body: unknown };

/** Stores the response of a claimed key, in the same transaction as the work it describes. */
export async function completeIdempotencyKey(tx: Tx, k: IdempotentAnswer): Promise<void> {
  await tx.query(sql.typeAlias('void')`
    UPDATE idempotency_keys
    SET state = 'done', response_status = ${k.status}, response_body = ${sql.jsonb(k.body as never)}
    WHERE api_key_id = ${k.apiKeyId} AND key = ${k.key} AND state = 'in_flight'`);
}

/** Lets the client try again with the same key after a request that did nothing (it failed). */
export async function releaseIdempotencyKey(db: Db, k: { apiKeyId: number; key: string }): Promise<void> {
  await db.query(sql.typeAlias('void')`
    DELETE FROM idempotency_keys WHERE api_key_id = ${k.apiKeyId} AND key = ${k.key} AND state = 'in_flight'`);
}
