import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

const keyRow = z.object({
  id: z.coerce.number(),
  name: z.string(),
  role: z.enum(['customer', 'admin']),
  customer_id: z.string().nullable(),
});
export type ApiKey = z.infer<typeof keyRow>;

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export async function findApiKey(db: Db, key: string): Promise<ApiKey | null> {
  return db.maybeOne(sql.type(keyRow)`
    SELECT id, name, role, customer_id FROM api_keys WHERE key_hash = ${hashApiKey(key)} AND revoked_at IS NULL`);
}

/** Creates a key and returns it in clear: the only moment it is ever seen. */
export async function createApiKey(
  db: Db | Tx,
  k: { name: string; role: 'customer' | 'admin'; customerId: string | null },
): Promise<string> {
  const key = `of_${k.role === 'admin' ? 'adm' : 'cus'}_${randomBytes(32).toString('base64url')}`;
  await db.query(sql.typeAlias('void')`
    INSERT INTO api_keys (name, key_hash, key_prefix, role, customer_id)
    VALUES (${k.name}, ${hashApiKey(key)}, ${key.slice(0, 12)}, ${k.role}, ${k.customerId})`);
  return key;
}

export async function revokeApiKeysNamed(db: Db | Tx, name: string): Promise<void> {
  await db.query(sql.typeAlias('void')`
    UPDATE api_keys SET revoked_at = now() WHERE name = ${name} AND revoked_at IS NULL`);
}
