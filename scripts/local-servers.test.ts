import { existsSync } from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { answersPing } from './local-redis.ts';
import { chooseServer, serversForRun } from './local-servers.ts';
import { freePort, portAnswers } from './processes.ts';

describe('chooseServer', () => {
  const fallback = 'redis://127.0.0.1:6379';
  it.each([
    { setting: undefined, expected: { url: fallback, probe: true } },
    { setting: '', expected: { url: fallback, probe: true } },
    { setting: 'embedded', expected: 'embedded' },
    { setting: 'redis://10.0.0.5:6380', expected: { url: 'redis://10.0.0.5:6380', probe: false } },
  ])('reads $setting as $expected', ({ setting, expected }) => {
    expect(chooseServer(setting, fallback)).toEqual(expected);
  });
});

describe('serversForRun, when nothing answers at the default addresses', () => {
  it('starts a PostgreSQL and a Redis for the run, and stop() leaves no server, port or directory behind', async () => {
    const [pgPort, redisPort] = [await freePort(), await freePort()];
    const messages: string[] = [];
    const servers = await serversForRun({
      databaseUrl: undefined,
      redisUrl: undefined,
      variables: { database: 'TEST_DATABASE_URL', redis: 'TEST_REDIS_URL' },
      defaults: {
        databaseUrl: `postgres://postgres@127.0.0.1:${pgPort}/postgres`,
        redisUrl: `redis://127.0.0.1:${redisPort}`,
      },
      log: (message) => messages.push(message),
    });
    const started = {
      postgres: Number(new URL(servers.adminDatabaseUrl).port),
      redis: Number(new URL(servers.redisUrl).port),
    };
    let dataDir = '';
    try {
      expect(messages.filter((m) => m.includes('starting one for this run'))).toHaveLength(2);
      const client = new pg.Client({ connectionString: servers.adminDatabaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ dir: string }>(`SELECT current_setting('data_directory') AS dir`);
        dataDir = rows[0]!.dir;
        await client.query('CREATE DATABASE may_create_databases'); // the harness clones a template
      } finally {
        await client.end();
      }
      expect(await answersPing(started.redis)).toBe(true);
    } finally {
      await servers.stop();
    }
    expect(await portAnswers(started.postgres)).toBe(false);
    expect(await portAnswers(started.redis)).toBe(false);
    expect(existsSync(dataDir)).toBe(false);
  }, 60_000);
});
