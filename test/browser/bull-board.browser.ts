import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { DEAD_LETTER_QUEUE, MAINTENANCE_QUEUE, stepNames } from '../../queues/order-workflow.ts';
import { type Harness, startHarness } from '../support/harness.ts';
import { launchChromium, type ServedApp, serveApp } from './support.ts';

// Bull Board in a real browser (headless Chromium): the admin logs in through the Basic challenge, as a
// person would, and sees every queue; a customer key and no key are refused. Run: npm run test:browser.

const queueNames = [...stepNames, DEAD_LETTER_QUEUE, MAINTENANCE_QUEUE];
const resultsDir = fileURLToPath(new URL('results/', import.meta.url));
const BASIC_CHALLENGE = 'Basic realm="orderflow", charset="UTF-8"';

let h: Harness;
let served: ServedApp | undefined;
let browser: Browser;
let base: string;
/** What the server saw of the board's page requests: the scheme the browser sent, and the answer. */
const pageRequests: Array<{ scheme: string | undefined; status: number }> = [];

beforeAll(async () => {
  h = await startHarness({ workers: false });
  served = await serveApp(async (request, env) => {
    const response = await h.app.fetch(request, env);
    if (new URL(request.url).pathname === '/admin/queues') {
      pageRequests.push({ scheme: request.headers.get('authorization')?.split(' ')[0], status: response.status });
    }
    return response;
  });
  base = served.base;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await h?.close();
});

test('an admin key logs in through the Basic challenge, sees every queue and can pause one', async () => {
  const context = await browser.newContext({ httpCredentials: { username: 'ops', password: h.adminKey } });
  const page = await context.newPage();
  // The fonts the page links are on the internet: do not wait for them.
  const response = await page.goto(`${base}/admin/queues`, { waitUntil: 'domcontentloaded' });
  expect(response?.status()).toBe(200);
  // The queue list comes from the board's API calls, so it appears only if they were let in too.
  for (const name of queueNames) await page.getByRole('link', { name, exact: true }).first().waitFor();
  // A real challenge-response: the browser asked without credentials, got the Basic challenge, answered.
  expect(pageRequests[0]).toEqual({ scheme: undefined, status: 401 });
  expect(pageRequests).toContainEqual({ scheme: 'Basic', status: 200 });

  await mkdir(resultsDir, { recursive: true });
  const screenshot = `${resultsDir}bull-board.png`;
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`Bull Board screenshot: ${screenshot}`);

  // A write from the board (same origin, Basic credentials, through the CSRF check): pause a queue.
  const card = page
    .locator('div', { has: page.getByRole('link', { name: 'notify', exact: true }) })
    .filter({ hasText: 'Jobs' })
    .last();
  await card.locator('button[aria-haspopup="menu"]').click();
  await page.getByRole('menuitem', { name: 'Pause' }).click();
  const paused = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().endsWith('/notify/pause'));
  await page.getByRole('button', { name: 'Confirm' }).click();
  expect((await paused).status()).toBe(200);
  expect(await h.deps.queues.queues.notify!.isPaused()).toBe(true);
  await context.close();
});

test('a customer key is refused with 403 and sees no queue', async () => {
  const context = await browser.newContext({ httpCredentials: { username: 'ops', password: h.customerKey } });
  const page = await context.newPage();
  const response = await page.goto(`${base}/admin/queues`);
  expect(response?.status()).toBe(403);
  expect(pageRequests.slice(-2)).toEqual([
    { scheme: undefined, status: 401 },
    { scheme: 'Basic', status: 403 },
  ]);
  expect(await page.textContent('body')).toContain('forbidden');
  expect(await page.locator('a[href^="/admin/queues/queue/"]').count()).toBe(0);
  await context.close();
});

test('a wrong key is answered once, then refused with 401', async () => {
  const context = await browser.newContext({ httpCredentials: { username: 'ops', password: 'of_adm_not_a_key' } });
  const page = await context.newPage();
  const response = await page.goto(`${base}/admin/queues`);
  expect(response?.status()).toBe(401);
  expect(await response?.headerValue('www-authenticate')).toBe(BASIC_CHALLENGE);
  expect(pageRequests.slice(-2)).toEqual([
    { scheme: undefined, status: 401 },
    { scheme: 'Basic', status: 401 },
  ]);
  expect(await page.locator('a[href^="/admin/queues/queue/"]').count()).toBe(0);
  await context.close();
});

test('no credentials get 401 with the Basic challenge alone, which Chromium takes up', async () => {
  const context = await browser.newContext();
  // Chromium takes up the Basic challenge and, with nothing to answer, fails the navigation; a challenge
  // it cannot answer (Bearer alone, as on the other admin routes) just shows the 401 page.
  await expect((await context.newPage()).goto(`${base}/admin/queues`)).rejects.toThrow('ERR_INVALID_AUTH_CREDENTIALS');
  expect(pageRequests.at(-1)).toEqual({ scheme: undefined, status: 401 });
  expect((await (await context.newPage()).goto(`${base}/admin/dead-letters`))?.status()).toBe(401);
  // The answer itself, as a script of the page sees it (credentials omitted, so no challenge is taken up).
  const page = await context.newPage();
  await page.goto(`${base}/healthz`);
  const seen = await page.evaluate(async (url) => {
    const response = await fetch(url, { credentials: 'omit' });
    return { status: response.status, challenge: response.headers.get('www-authenticate') };
  }, `${base}/admin/queues`);
  expect(seen).toEqual({ status: 401, challenge: BASIC_CHALLENGE });
  await context.close();
});
