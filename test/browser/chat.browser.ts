import { mkdir, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createApp } from '../../api/app.ts';
import { type Harness, orderBody, startHarness } from '../support/harness.ts';
import { launchChromium, type ServedApp, serveApp } from './support.ts';

// The assistant's try-it page (/chat/demo) in a real browser (headless Chromium): a customer pastes a
// key and asks where their order is; the API's real POST /chat answers through the sandbox's fake
// Bedrock (its rule-based model, nothing scripted), which calls the tools, and the page shows the reply,
// the responder and the tool calls. Run: npm run test:browser.

let h: Harness;
let served: ServedApp | undefined;
let browser: Browser;
let base: string;
const resultsDir = fileURLToPath(new URL('results/', import.meta.url));
const elsewhere: string[] = [];
const saved = { ...process.env };

beforeAll(async () => {
  // The SDK's standard credential chain, with dummies the fake accepts; a bearer token in the environment
  // would switch the SDK to bearer auth.
  process.env.AWS_ACCESS_KEY_ID = 'sandbox';
  process.env.AWS_SECRET_ACCESS_KEY = 'sandbox';
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_BEARER_TOKEN_BEDROCK;
  delete process.env.AWS_PROFILE;
  h = await startHarness({ env: { BEDROCK_MODEL_ID: 'orderflow.fake-assistant-v1:0', AWS_REGION: 'us-east-1' } });
  // The API as api/server.ts builds it, with the assistant's settings from the configuration.
  const app = createApp({
    ...h.deps,
    bodyLimitBytes: h.config.http.bodyLimitBytes,
    idempotencyStaleAfterMs: 60_000,
    recentOrdersTtlMs: h.config.cache.ttlMs.recentOrders,
    chat: h.config.chat,
  });
  served = await serveApp(app.fetch);
  base = served.base;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await h?.close();
  process.env = saved;
});

test('a customer asks where their order is and the page shows the answer, its responder and tools', async () => {
  const placed = await h.placeOrder(orderBody());
  expect(placed.status).toBe(201);
  await h.waitForTerminal(placed.body.id);
  const order = await h.request('GET', `/orders/${placed.body.id}`, { key: h.customerKey });
  const trackingNumber: string = order.body.shipment.trackingNumber;

  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('request', (request) => {
    if (!request.url().startsWith(base)) elsewhere.push(request.url());
  });
  const violations: string[] = [];
  const errors: string[] = [];
  page.on('console', (message) => {
    if (/content security policy/i.test(message.text())) violations.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));

  const response = await page.goto(`${base}/chat/demo`);
  expect(response?.status()).toBe(200);
  expect(await response?.headerValue('content-security-policy')).toContain("default-src 'self'");

  await page.fill('#key', h.customerKey);
  await page.fill('#message', 'where is my order?');
  await page.click('#send');

  const answer = page.locator('#transcript li.assistant').first();
  await answer.waitFor();
  expect(await answer.getAttribute('data-responder')).toBe('bedrock');
  expect(await answer.locator('.reply').textContent()).toContain(trackingNumber);
  // The fake's model found the order through the recent orders, then read its status.
  expect(await answer.locator('.badge.tool').count()).toBeGreaterThanOrEqual(1);
  expect(await answer.locator('.badge.failed').count()).toBe(0);
  expect(await page.locator('#session').textContent()).toMatch(/^Conversation chs_/);

  // The model saw the tools and the question; the customer's key never left the API.
  const seen = h.sandbox.bedrock.requests();
  expect(seen.length).toBeGreaterThanOrEqual(2);
  expect(JSON.stringify(seen)).not.toContain(h.customerKey);

  await mkdir(resultsDir, { recursive: true });
  const screenshot = `${resultsDir}chat.png`;
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`chat demo screenshot: ${screenshot}`);
  expect((await stat(screenshot)).size).toBeGreaterThan(10_000);
  expect(elsewhere).toEqual([]);
  expect(violations).toEqual([]);
  expect(errors).toEqual([]);
  await context.close();
});

test('a wrong key is refused on the page, with the API’s error', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/chat/demo`);
  await page.fill('#key', 'of_cus_not-a-key');
  await page.fill('#message', 'hello');
  await page.click('#send');
  await expect.poll(() => page.locator('#transcript li.error').textContent()).toMatch(/^401 /);
  await context.close();
});
