import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { recordDeadLetter } from '../../sql/dead-letters.ts';
import { type Harness, orderBody, startHarness } from '../support/harness.ts';
import { type Fixtures, generateRequests } from './generate.ts';
import { formatReport } from './report.ts';
import { curlFor, judge, type Outcome, send } from './send.ts';
import { diffSnapshots, takeSnapshot } from './snapshot.ts';
import { seededRandom } from './values.ts';

// Thousands of hostile requests over real HTTP against the whole API (run by `npm run test:fuzz`, which
// passes the seed and the count). No workers run, and every write request is invalid by construction,
// so PostgreSQL must look exactly the same afterwards.

const seed = Number(process.env.FUZZ_SEED ?? 1);
const count = Number(process.env.FUZZ_COUNT ?? 5_000);
const concurrency = 8;

let h: Harness;
let server: http.Server;
let port: number;
let fixtures: Fixtures;

beforeAll(async () => {
  // The read budget is about latency, not input: on a loaded machine a cache fill can take longer than
  // the default 500 ms, and its honest 503 would be noise here.
  // Rate limits off: three keys sending 5,000 requests as fast as they can would spend most of them on
  // 429s (test/rate-limit.test.ts covers those), and the fuzz is here to reach every route's checks.
  h = await startHarness({
    workers: false,
    env: { DB_READ_BUDGET_MS: '10000', RATE_LIMIT_WRITES: '0', RATE_LIMIT_READS: '0' },
  });
  const [ada, grace] = h.keys.customers;
  const mine = await h.placeOrder(orderBody(), ada!.apiKey);
  const theirs = await h.placeOrder(orderBody({ region: 'us' }), grace!.apiKey);
  const sale = await h.request('POST', '/admin/flash-sales', {
    key: h.adminKey,
    body: {
      name: 'Fixture sale',
      region: 'eu',
      skus: ['CHAINSAW-05'],
      startsAt: new Date(Date.now() + 86_400_000).toISOString(),
      endsAt: new Date(Date.now() + 2 * 86_400_000).toISOString(),
    },
  });
  expect([mine.status, theirs.status, sale.status]).toEqual([201, 201, 201]);
  const letter = await recordDeadLetter(h.deps.db, {
    orderId: mine.body.id,
    generation: 1,
    step: 'ship',
    errorCode: 'internal',
    message: 'fixture',
    attempts: 1,
    payload: null,
  });
  fixtures = {
    keys: { admin: h.adminKey, customer: ada!.apiKey, otherCustomer: grace!.apiKey },
    customerId: ada!.customerId,
    otherCustomerId: grace!.customerId,
    orderId: mine.body.id,
    otherOrderId: theirs.body.id,
    saleId: sale.body.id,
    deadLetterId: letter.id,
  };
  server = serve({ fetch: h.app.fetch, hostname: '127.0.0.1', port: 0 }) as http.Server;
  await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await h?.close();
});

it(`answers ${count} hostile requests (seed ${seed}) without a 5xx, in the documented shape, changing nothing`, async () => {
  const requests = generateRequests(seededRandom(seed), fixtures, count);
  const before = await takeSnapshot(h.deps.db);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const started = performance.now();
  const outcomes: Outcome[] = new Array(requests.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const i = next++;
        const sent = await send(agent, port, requests[i]!, h.config.http.bodyLimitBytes);
        outcomes[i] = { ...sent, problems: judge(sent, h.config.http.bodyLimitBytes) };
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();

  const changes = diffSnapshots(before, await takeSnapshot(h.deps.db));
  const ready = await h.request('GET', '/readyz');
  const keys = {
    ADMIN_KEY: fixtures.keys.admin,
    CUSTOMER_KEY: fixtures.keys.customer,
    OTHER_KEY: fixtures.keys.otherCustomer,
  };
  const artifacts = process.env.FUZZ_ARTIFACTS ?? tmpdir();
  const bodyFile = (i: number) => () => {
    const file = join(artifacts, `request-${i}.body`);
    writeFileSync(file, outcomes[i]!.request.body!);
    return file;
  };
  const violations = outcomes.flatMap((o, i) =>
    o.problems.length > 0 ? [{ index: i, outcome: o, curl: curlFor(o.request, keys, bodyFile(i)) }] : [],
  );
  const report = formatReport({ seed, count, seconds, outcomes, violations, changes, readyStatus: ready.status });
  if (process.env.FUZZ_ARTIFACTS) writeFileSync(join(process.env.FUZZ_ARTIFACTS, 'report.txt'), report);
  else console.log(report);

  expect(violations.map((v) => `${v.outcome.request.route}: ${v.outcome.problems.join('; ')}`)).toEqual([]);
  expect(changes).toEqual([]);
  expect(ready.status).toBe(200);
});
