import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type Harness, startHarness } from '../support/harness.ts';
import { launchChromium, type ServedApp, serveApp } from './support.ts';

// The API reference (/docs) in a real browser (headless Chromium) on a closed network: Swagger UI comes
// from the API itself, reads /openapi.json and lists the operations. Run: npm run test:browser.

let h: Harness;
let served: ServedApp | undefined;
let browser: Browser;
let base: string;
let shots: string;
/** Every request the page made that did not go to the API (a CDN, a font): there must be none. */
const elsewhere: string[] = [];

beforeAll(async () => {
  h = await startHarness({ workers: false });
  served = await serveApp(h.app.fetch);
  base = served.base;
  shots = await mkdtemp(join(tmpdir(), 'orderflow-docs-'));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await h?.close();
  if (shots) await rm(shots, { recursive: true, force: true });
});

test('the reference lists the operations from /openapi.json, with nothing loaded from elsewhere', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('request', (request) => {
    if (!request.url().startsWith(base) && !request.url().startsWith('data:')) elsewhere.push(request.url());
  });
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/content security policy/i.test(message.text())) violations.push(message.text());
  });
  const response = await page.goto(`${base}/docs`);
  expect(response?.status()).toBe(200);
  expect(await response?.headerValue('content-security-policy')).toContain("default-src 'self'");

  // Rendered from the document: the operations' paths and summaries, in their tags.
  await page
    .locator('.opblock-summary-path', { hasText: /^\/orders$/ })
    .first()
    .waitFor();
  const operations = page.locator('.opblock');
  expect(await operations.count()).toBeGreaterThanOrEqual(12);
  await expect.poll(() => page.locator('.opblock-summary-description', { hasText: 'Place an order' }).count()).toBe(1);
  expect(await page.locator('.opblock-tag').allTextContents()).toEqual(
    expect.arrayContaining([expect.stringContaining('Orders'), expect.stringContaining('Admin')]),
  );

  const screenshot = join(shots, 'docs.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  expect((await stat(screenshot)).size).toBeGreaterThan(20_000);
  expect(elsewhere).toEqual([]);
  expect(violations).toEqual([]);
  await context.close();
});
