import { inject } from 'vitest';

// Where the tests find the real servers: chosen once per run by test/support/global-setup.ts (from
// TEST_DATABASE_URL and TEST_REDIS_URL, or servers it starts) and handed to every test file. Child
// processes get them from the harness's env (DATABASE_URL, REDIS_URL).
export const adminDatabaseUrl = inject('adminDatabaseUrl');
export const redisUrl = inject('redisUrl');

export function databaseUrl(name: string): string {
  const url = new URL(adminDatabaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
