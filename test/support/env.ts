// Where the tests find the real servers. CI and the developers' machines run PostgreSQL and Redis on
// the standard local ports; override with TEST_DATABASE_URL (an admin connection: it creates and
// drops databases) and TEST_REDIS_URL.
export const adminDatabaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function databaseUrl(name: string): string {
  const url = new URL(adminDatabaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
