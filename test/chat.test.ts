import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../api/app.ts';
import { defaultChatSettings } from '../config/index.ts';
import { listOrderReturns } from '../sql/returns.ts';
import { findShipment } from '../sql/shipments.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

// The support assistant on the real servers (SPEC §6): POST /chat through the API, its tools on the
// harness's PostgreSQL and Redis, Bedrock played by the sandbox's fake over the Converse protocol, the
// AWS SDK signing with dummy credentials. Unscripted turns are answered by the fake's rule-based model.

let h: Harness;
let templateApp: ReturnType<typeof createApp>;

beforeAll(async () => {
  // The SDK's standard chain finds these; a bearer token would switch it to another scheme.
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAFAKEFORTESTS');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'fake-secret-for-tests');
  vi.stubEnv('AWS_BEARER_TOKEN_BEDROCK', undefined);
  h = await startHarness({ env: { BEDROCK_MODEL_ID: 'test.fake-model-v1:0', CHAT_TIMEOUT_MS: '2000' } });
  // The same API without a model: the template responder alone (its own registry: metrics register once).
  templateApp = createApp({
    ...h.apiDeps,
    registry: new Registry(),
    bodyLimitBytes: h.config.http.bodyLimitBytes,
    idempotencyStaleAfterMs: 60_000,
    recentOrdersTtlMs: h.config.cache.ttlMs.recentOrders,
    chat: defaultChatSettings,
  });
});
afterAll(async () => {
  await h?.close();
  vi.unstubAllEnvs();
});

type Answer = {
  sessionId: string;
  reply: string;
  responder: 'bedrock' | 'template';
  toolCalls: Array<{ name: string; ok: boolean }>;
  proposal?: {
    proposalId: string;
    orderId: string;
    refundCents: number;
    items: Array<{ sku: string; quantity: number }>;
  };
};

async function chat(message: string, options: { sessionId?: string; key?: string; templates?: boolean } = {}) {
  const body = { message, ...(options.sessionId ? { sessionId: options.sessionId } : {}) };
  const key = options.key ?? h.customerKey;
  if (!options.templates) return h.request('POST', '/chat', { key, body });
  const response = await templateApp.request('/chat', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

async function turn(message: string, options: { sessionId?: string; templates?: boolean } = {}): Promise<Answer> {
  const answer = await chat(message, options);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body as Answer;
}

/** A COMPLETED order, shipped; delivered too unless told otherwise (the carrier reports it, the poll stores it). */
async function shippedOrder(items: Array<{ sku: string; quantity: number }>, options: { deliver?: boolean } = {}) {
  const placed = await h.placeOrder(orderBody({ items }));
  expect(placed.status).toBe(201);
  const order = await h.waitForTerminal(placed.body.id);
  expect(order.status).toBe('COMPLETED');
  const shipment = options.deliver === false ? await findShipment(h.deps.db, order.id) : await h.deliver(order.id);
  return { orderId: order.id, trackingNumber: shipment!.tracking_number as string };
}

const returnsOf = (orderId: string) => listOrderReturns(h.deps.db, orderId);
const metricsText = () => h.apiDeps.registry.metrics();

describe('POST /chat on Bedrock (the sandbox fake)', () => {
  it('answers "where\'s my package?" with the order status tool and the tracking number', async () => {
    const { orderId, trackingNumber } = await shippedOrder([{ sku: 'BERSERK-41', quantity: 1 }], { deliver: false });
    h.sandbox.bedrock.reset();
    const answer = await turn("Where's my package?");
    expect(answer).toMatchObject({ responder: 'bedrock', sessionId: expect.stringMatching(/^chs_/) });
    expect(answer.toolCalls).toContainEqual({ name: 'get_order_status', ok: true });
    expect(answer.reply).toContain(trackingNumber);
    // The model was given the tools and, as data, the order's status.
    const seen = h.sandbox.bedrock.requests();
    expect(seen[0]!.modelId).toBe('test.fake-model-v1:0');
    expect(seen[0]!.body.toolConfig.tools.map((t: { toolSpec: { name: string } }) => t.toolSpec.name)).toEqual([
      'get_order_status',
      'get_recent_orders',
      'check_stock',
      'check_return_eligibility',
      'create_return',
    ]);
    expect(JSON.stringify(seen.at(-1)!.body.messages)).toContain(orderId);
  });

  it('answers "is volume 5 in stock?" from the stock tool', async () => {
    h.sandbox.bedrock.reset();
    const answer = await turn('Is volume 5 in stock?');
    expect(answer.responder).toBe('bedrock');
    expect(answer.toolCalls).toEqual([{ name: 'check_stock', ok: true }]);
    expect(answer.reply).toMatch(/CHAINSAW-05|Chainsaw Man, Vol\. 5/);
    // The model answered from the tool's data: volume 5 resolved to its SKU, with the stock level.
    const result = h.sandbox.bedrock.requests().at(-1)!.body.messages.at(-1).content[0].toolResult;
    expect(result.content[0].json.untrustedStoreData).toMatchObject({ sku: 'CHAINSAW-05', availability: 'in_stock' });
  });

  it('proposes a return of "that one", creates it only after "yes", with the quote\'s refund', async () => {
    const { orderId } = await shippedOrder([{ sku: 'ONEPIECE-105', quantity: 2 }]);
    const status = await turn(`What is the status of order ${orderId}?`);
    expect(status.toolCalls).toEqual([{ name: 'get_order_status', ok: true }]);

    const proposed = await turn('I want to return that one', { sessionId: status.sessionId });
    expect(proposed.responder).toBe('bedrock');
    expect(proposed.toolCalls).toEqual([{ name: 'check_return_eligibility', ok: true }]);
    expect(proposed.proposal).toMatchObject({
      orderId,
      refundCents: 2 * 999,
      items: [{ sku: 'ONEPIECE-105', quantity: 2 }],
    });
    expect(proposed.reply).toContain(proposed.proposal!.proposalId);
    expect(await returnsOf(orderId)).toEqual([]);

    const confirmed = await turn('yes', { sessionId: status.sessionId });
    expect(confirmed.toolCalls).toEqual([{ name: 'create_return', ok: true }]);
    expect(confirmed.proposal).toBeUndefined();
    const returns = await returnsOf(orderId);
    expect(returns).toHaveLength(1);
    expect(returns[0]).toMatchObject({ customer_id: h.keys.customers[0]!.customerId, quoted_cents: 1998 });
    expect(confirmed.reply).toContain(returns[0]!.rma);

    // A second "yes" has no proposal left to confirm.
    const again = await turn('yes', { sessionId: status.sessionId });
    expect(again.toolCalls.filter((c) => c.ok && c.name === 'create_return')).toEqual([]);
    expect(await returnsOf(orderId)).toHaveLength(1);
  });

  describe('falls back to the template responder, same answer shape', () => {
    const failures = [
      { cause: 'throttled', error: { status: 429, type: 'ThrottlingException', message: 'Too many requests' } },
      { cause: 'access_denied', error: { status: 403, type: 'AccessDeniedException', message: 'No access' } },
      { cause: 'service_error', error: { status: 500, type: 'InternalServerException', message: 'Boom' } },
      { cause: 'unavailable', error: { status: 503, type: 'ServiceUnavailableException', message: 'Down' } },
    ];
    for (const { cause, error } of failures) {
      it(`when Bedrock answers ${error.status} ${error.type}`, async () => {
        h.sandbox.bedrock.script([{ error }]);
        const answer = await turn('Is volume 5 in stock?');
        expect(answer).toMatchObject({ responder: 'template', toolCalls: [{ name: 'check_stock', ok: true }] });
        expect(answer.reply).toContain('CHAINSAW-05');
        expect(await metricsText()).toMatch(new RegExp(`orderflow_chat_fallbacks_total\\{cause="${cause}"\\} [1-9]`));
      });
    }

    it('when Bedrock is slower than CHAT_TIMEOUT_MS', async () => {
      h.sandbox.bedrock.script([{ text: 'Too late', delayMs: 60_000 }]);
      const answer = await turn('Is volume 5 in stock?');
      expect(answer).toMatchObject({ responder: 'template', toolCalls: [{ name: 'check_stock', ok: true }] });
      expect(await metricsText()).toMatch(/orderflow_chat_fallbacks_total\{cause="timeout"\} [1-9]/);
    });

    it('when the model sends tool input that does not fit the schema', async () => {
      h.sandbox.bedrock.script([{ toolUse: [{ name: 'get_order_status', input: { orderId: 'not-an-id', x: 1 } }] }]);
      const answer = await turn('Is volume 5 in stock?');
      expect(answer).toMatchObject({ responder: 'template', toolCalls: [{ name: 'check_stock', ok: true }] });
      expect(await metricsText()).toMatch(/orderflow_chat_fallbacks_total\{cause="malformed_tool_input"\} [1-9]/);
    });

    it('when the model asks for a tool that does not exist', async () => {
      h.sandbox.bedrock.script([{ toolUse: [{ name: 'run_sql', input: { query: 'DELETE FROM orders' } }] }]);
      const answer = await turn('Is volume 5 in stock?');
      expect(answer).toMatchObject({ responder: 'template', toolCalls: [{ name: 'check_stock', ok: true }] });
      expect(await metricsText()).toMatch(/orderflow_chat_fallbacks_total\{cause="unknown_tool"\} [1-9]/);
    });

    it('when Bedrock answers something that is not a Converse answer', async () => {
      h.sandbox.bedrock.script([{ raw: 'this is not json' }]);
      const answer = await turn('Is volume 5 in stock?');
      expect(answer).toMatchObject({ responder: 'template', toolCalls: [{ name: 'check_stock', ok: true }] });
    });
  });

  it('counts turns by responder, tool calls by tool and result, and turn latency', async () => {
    const text = await metricsText();
    expect(text).toMatch(/orderflow_chat_turns_total\{responder="bedrock"\} [1-9]/);
    expect(text).toMatch(/orderflow_chat_turns_total\{responder="template"\} [1-9]/);
    expect(text).toMatch(/orderflow_chat_tool_calls_total\{tool="check_stock",result="ok"\} [1-9]/);
    expect(text).toMatch(/orderflow_chat_turn_duration_seconds_count\{responder="bedrock"\} [1-9]/);
  });
});

describe('POST /chat on templates only (no BEDROCK_MODEL_ID)', () => {
  it('answers where the package is, with the tracking number', async () => {
    const { trackingNumber } = await shippedOrder([{ sku: 'BERSERK-42', quantity: 1 }], { deliver: false });
    const answer = await turn("Where's my package?", { templates: true });
    expect(answer).toMatchObject({ responder: 'template', toolCalls: [{ name: 'get_order_status', ok: true }] });
    expect(answer.reply).toContain(trackingNumber);
  });

  it('answers whether volume 5 is in stock, and lists the recent orders', async () => {
    const stock = await turn('is volume 5 in stock?', { templates: true });
    expect(stock).toMatchObject({ responder: 'template', toolCalls: [{ name: 'check_stock', ok: true }] });
    expect(stock.reply).toMatch(/CHAINSAW-05.*in stock/);
    const recent = await turn('Show me my recent orders', { templates: true });
    expect(recent.toolCalls).toEqual([{ name: 'get_recent_orders', ok: true }]);
  });

  it('proposes the return of "that one" and creates it on a later "yes"', async () => {
    const { orderId } = await shippedOrder([{ sku: 'CHAINSAW-05', quantity: 1 }]);
    const first = await turn(`Where is order ${orderId}?`, { templates: true });
    const proposed = await turn('I want to return that one', { sessionId: first.sessionId, templates: true });
    expect(proposed.proposal).toMatchObject({
      orderId,
      refundCents: 1199,
      items: [{ sku: 'CHAINSAW-05', quantity: 1 }],
    });
    expect(proposed.reply).toContain(proposed.proposal!.proposalId);
    expect(await returnsOf(orderId)).toEqual([]);
    const confirmed = await turn('Yes, please', { sessionId: first.sessionId, templates: true });
    expect(confirmed.toolCalls).toEqual([{ name: 'create_return', ok: true }]);
    const returns = await returnsOf(orderId);
    expect(returns).toMatchObject([{ quoted_cents: 1199, status: expect.any(String) }]);
    expect(confirmed.reply).toContain(returns[0]!.rma);
  });

  it('asks back which item of a two-item order, then proposes the one named', async () => {
    const { orderId } = await shippedOrder([
      { sku: 'BERSERK-41', quantity: 1 },
      { sku: 'CHAINSAW-05', quantity: 2 },
    ]);
    const first = await turn(`Where is order ${orderId}?`, { templates: true });
    const which = await turn('I want to return that one', { sessionId: first.sessionId, templates: true });
    expect(which.toolCalls).toEqual([{ name: 'check_return_eligibility', ok: false }]);
    expect(which.proposal).toBeUndefined();
    expect(which.reply).toMatch(/Which item/);
    const named = await turn('I want to return the Chainsaw Man', { sessionId: first.sessionId, templates: true });
    expect(named.proposal).toMatchObject({
      orderId,
      refundCents: 2 * 1199,
      items: [{ sku: 'CHAINSAW-05', quantity: 2 }],
    });
    expect(await returnsOf(orderId)).toEqual([]);
  });

  it('asks back which order when "that one" could be several', async () => {
    const list = await turn('my recent orders', { templates: true });
    const ambiguous = await turn('I want to return that one', { sessionId: list.sessionId, templates: true });
    expect(ambiguous.proposal).toBeUndefined();
    expect(ambiguous.toolCalls).toEqual([]);
    expect(ambiguous.reply).toMatch(/Which order/);
  });
});

describe('POST /chat, the request', () => {
  it('takes a customer key only: none is 401, an admin key 403', async () => {
    expect((await h.request('POST', '/chat', { body: { message: 'hi' } })).status).toBe(401);
    const admin = await h.request('POST', '/chat', { key: h.adminKey, body: { message: 'hi' } });
    expect(admin.status).toBe(403);
    expect(admin.body.error.code).toBe('forbidden');
  });

  it('refuses an empty or too long message and a malformed sessionId, naming the field', async () => {
    for (const body of [{ message: '' }, { message: 'x'.repeat(2001) }, { message: 'hi', sessionId: 'abc' }, {}]) {
      const raw = await h.request('POST', '/chat', { key: h.customerKey, body });
      expect(raw.status, JSON.stringify(body)).toBe(400);
      expect(raw.body.error.code).toBe('validation_failed');
    }
  });

  it("answers another customer's session, or an unknown one, with 404", async () => {
    const mine = await turn('hello');
    const foreign = await chat('hello', { sessionId: mine.sessionId, key: h.keys.customers[1]!.apiKey });
    expect(foreign.status).toBe(404);
    const unknown = await chat('hello', { sessionId: 'chs_AAAAAAAAAAAAAAAAAAAAAA' });
    expect(unknown.status).toBe(404);
  });

  it('keeps the session in Redis with its TTL', async () => {
    const answer = await turn('hello');
    const ttl = await h.deps.redis.pttl(h.deps.keys.chatSession(answer.sessionId));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(h.config.chat.sessionTtlMs);
  });

  it('is in the OpenAPI document', async () => {
    const doc = await h.request('GET', '/openapi.json');
    expect(doc.body.paths['/chat'].post.operationId).toBe('chat');
  });
});
