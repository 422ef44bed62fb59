import type { AddressInfo } from 'node:net';
import {
  AccessDeniedException,
  BedrockRuntimeClient,
  BedrockRuntimeServiceException,
  ConverseCommand,
  type ConverseCommandInput,
  ServiceUnavailableException,
  ThrottlingException,
  type Tool,
  ValidationException,
} from '@aws-sdk/client-bedrock-runtime';
import { type ServerType, serve } from '@hono/node-server';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createFakeBedrock } from './bedrock.ts';

// The fake Bedrock over real HTTP, through the real SDK client, configured as the assistant configures
// it against an endpoint override (NodeHttpHandler: the fake speaks HTTP/1.1, the SDK's default
// handler for this client HTTP/2).

const fake = createFakeBedrock({ seed: 7 });
let server: ServerType;
let client: BedrockRuntimeClient;
const modelId = 'anthropic.claude-3-5-haiku-20241022-v1:0';

const tools: Tool[] = [
  ['get_order_status', 'An order of the customer: status, items, tracking', { orderId: { type: 'string' } }],
  ['get_recent_orders', "The customer's recent orders, newest first", { limit: { type: 'integer' } }],
  ['check_stock', 'Whether a SKU is in stock in a region', { sku: { type: 'string' }, region: { type: 'string' } }],
  [
    'quote_return',
    'Whether items of an order can be returned, and the refund',
    {
      orderId: { type: 'string' },
      items: {
        type: 'array',
        items: { type: 'object', properties: { orderItemId: { type: 'string' }, quantity: { type: 'integer' } } },
      },
      reason: { type: 'string' },
    },
  ],
  ['create_return', 'Creates the return the customer confirmed', { confirm: { type: 'boolean' } }],
].map(([name, description, properties]) => ({
  toolSpec: {
    name: name as string,
    description: description as string,
    inputSchema: { json: { type: 'object', properties: properties as never } },
  },
}));

function ask(text: string, extra: Partial<ConverseCommandInput> = {}) {
  return new ConverseCommand({
    modelId,
    messages: [{ role: 'user', content: [{ text }] }],
    toolConfig: { tools },
    ...extra,
  });
}

beforeAll(async () => {
  // A bearer token in the environment would switch the SDK from SigV4 to bearer auth.
  delete process.env.AWS_BEARER_TOKEN_BEDROCK;
  server = serve({ fetch: fake.app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  client = new BedrockRuntimeClient({
    region: 'eu-west-1',
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    credentials: { accessKeyId: 'AKIDFAKE', secretAccessKey: 'fake-secret' },
    requestHandler: new NodeHttpHandler(),
    maxAttempts: 1,
  });
});

afterAll(async () => {
  client?.destroy();
  if (server) {
    if ('closeAllConnections' in server) server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

beforeEach(() => fake.reset());

describe('scripted replies', () => {
  it('answers a text reply as an end_turn assistant message, and records the request', async () => {
    fake.script([{ text: 'Hello there.' }]);
    const answer = await client.send(ask('hi', { system: [{ text: 'You are helpful.' }] }));
    expect(answer.stopReason).toBe('end_turn');
    expect(answer.output?.message).toEqual({ role: 'assistant', content: [{ text: 'Hello there.' }] });
    expect(answer.usage?.totalTokens).toBeGreaterThan(0);
    const [seen] = fake.requests();
    expect(seen?.modelId).toBe(modelId);
    expect(seen?.body.system).toEqual([{ text: 'You are helpful.' }]);
    expect(seen?.body.toolConfig.tools.map((t: Tool) => t.toolSpec?.name)).toContain('check_stock');
  });

  it('answers tool use with stopReason tool_use, ids given or generated', async () => {
    fake.script([
      {
        text: 'Let me look.',
        toolUse: [
          { name: 'get_order_status', input: { orderId: 'o-1' }, toolUseId: 'tu-1' },
          { name: 'check_stock', input: { sku: 'BERSERK-42' } },
        ],
      },
    ]);
    const answer = await client.send(ask('where is o-1, and is BERSERK-42 in stock?'));
    expect(answer.stopReason).toBe('tool_use');
    const [text, first, second] = answer.output?.message?.content ?? [];
    expect(text).toEqual({ text: 'Let me look.' });
    expect(first?.toolUse).toEqual({ toolUseId: 'tu-1', name: 'get_order_status', input: { orderId: 'o-1' } });
    expect(second?.toolUse?.name).toBe('check_stock');
    expect(second?.toolUse?.toolUseId).toMatch(/^tooluse_\w+$/);
  });

  it('records a request carrying toolResult blocks', async () => {
    fake.script([{ text: 'It has shipped.' }]);
    await client.send(
      ask('', {
        messages: [
          { role: 'user', content: [{ text: 'where is my order?' }] },
          {
            role: 'assistant',
            content: [{ toolUse: { toolUseId: 'tu-9', name: 'get_order_status', input: { orderId: 'o-1' } } }],
          },
          {
            role: 'user',
            content: [
              { toolResult: { toolUseId: 'tu-9', content: [{ json: { status: 'SHIPPED' } }], status: 'success' } },
            ],
          },
        ],
      }),
    );
    expect(fake.requests()[0]?.body.messages[2].content[0].toolResult).toEqual({
      toolUseId: 'tu-9',
      content: [{ json: { status: 'SHIPPED' } }],
      status: 'success',
    });
  });

  it.each([
    [{ status: 429, type: 'ThrottlingException', message: 'Too many requests' }, ThrottlingException],
    [{ status: 403, type: 'AccessDeniedException', message: 'No access to the model' }, AccessDeniedException],
    [{ status: 503, type: 'ServiceUnavailableException', message: 'Try later' }, ServiceUnavailableException],
  ])('surfaces %j as the SDK exception of that name', async (error, type) => {
    fake.script([{ error }]);
    const failure = await client.send(ask('hi')).catch((caught: unknown) => caught);
    expect(failure).toBeInstanceOf(type);
    expect(failure).toBeInstanceOf(BedrockRuntimeServiceException);
    expect((failure as BedrockRuntimeServiceException).message).toBe(error.message);
    expect((failure as BedrockRuntimeServiceException).$metadata.httpStatusCode).toBe(error.status);
  });

  it('refuses tool blocks that do not answer the previous turn, as Bedrock does', async () => {
    const failure = await client
      .send(
        ask('', {
          messages: [
            { role: 'user', content: [{ text: 'hi' }] },
            { role: 'assistant', content: [{ toolUse: { toolUseId: 'tu-1', name: 'check_stock', input: {} } }] },
            { role: 'user', content: [{ text: 'and?' }] },
          ],
        }),
      )
      .catch((caught: unknown) => caught);
    expect(failure).toBeInstanceOf(ValidationException);
    expect((failure as Error).message).toContain('tu-1');
  });

  it('sends a raw body as it is, for malformed answers', async () => {
    fake.script([{ raw: { output: { message: { role: 'assistant', content: [{ toolUse: { name: 'x' } }] } } } }]);
    const answer = await client.send(ask('hi'));
    expect(answer.stopReason).toBeUndefined();
    expect(answer.output?.message?.content?.[0]?.toolUse).toEqual({ name: 'x' });
  });

  it('holds a delayed answer until the SDK aborts it', async () => {
    fake.script([{ text: 'too late', delayMs: 60_000 }, { text: 'next' }]);
    const controller = new AbortController();
    const pending = client.send(ask('hi'), { abortSignal: controller.signal }).catch((caught: unknown) => caught);
    await expect.poll(() => fake.requests().length).toBe(1);
    controller.abort();
    expect(((await pending) as Error).name).toBe('AbortError');
    // The delayed reply was used by that call: the next one gets the next reply.
    const next = await client.send(ask('again'));
    expect(next.output?.message?.content).toEqual([{ text: 'next' }]);
  });
});

describe('the dev responder, when nothing is scripted', () => {
  async function turn(messages: NonNullable<ConverseCommandInput['messages']>) {
    const answer = await client.send(ask('', { messages }));
    return answer.output?.message ?? { role: 'assistant' as const, content: [] };
  }

  it('asks for the order status tool, then answers with the tracking number', async () => {
    const orderId = '7d3c1f0e-5b7a-4c2d-9a1e-0f1e2d3c4b5a';
    const question = { role: 'user' as const, content: [{ text: `where is my order ${orderId}?` }] };
    const call = await turn([question]);
    const use = call.content?.[0]?.toolUse;
    expect(use).toMatchObject({ name: 'get_order_status', input: { orderId } });
    const reply = await turn([
      question,
      call,
      {
        role: 'user',
        content: [
          {
            toolResult: {
              toolUseId: use?.toolUseId,
              content: [{ json: { id: orderId, status: 'SHIPPED', shipment: { trackingNumber: '1Z999' } } }],
            },
          },
        ],
      },
    ]);
    expect(reply.content?.[0]?.text).toContain('SHIPPED');
    expect(reply.content?.[0]?.text).toContain('1Z999');
  });

  it('finds the order through the recent orders when no id is given', async () => {
    const orderId = '11111111-2222-4333-8444-555555555555';
    const question = { role: 'user' as const, content: [{ text: 'where is my package?' }] };
    const recent = await turn([question]);
    const use = recent.content?.[0]?.toolUse;
    expect(use).toMatchObject({ name: 'get_recent_orders', input: { limit: 5 } });
    const statusCall = await turn([
      question,
      recent,
      {
        role: 'user',
        content: [{ toolResult: { toolUseId: use?.toolUseId, content: [{ json: { orders: [{ id: orderId }] } }] } }],
      },
    ]);
    expect(statusCall.content?.[0]?.toolUse).toMatchObject({ name: 'get_order_status', input: { orderId } });
  });

  it('checks stock, quotes a return and creates it only on a confirmation', async () => {
    expect((await turn([{ role: 'user', content: [{ text: 'is berserk-42 in stock in the us?' }] }])).content).toEqual([
      { toolUse: { toolUseId: expect.any(String), name: 'check_stock', input: { sku: 'BERSERK-42', region: 'us' } } },
    ]);
    const orderId = '11111111-2222-4333-8444-555555555555';
    const quote = await turn([{ role: 'user', content: [{ text: `I want to return ONEPIECE-105 from ${orderId}` }] }]);
    expect(quote.content?.[0]?.toolUse).toMatchObject({
      name: 'quote_return',
      input: { orderId, items: [{ orderItemId: 'ONEPIECE-105', quantity: 1 }] },
    });
    const create = await turn([{ role: 'user', content: [{ text: 'yes' }] }]);
    expect(create.content?.[0]?.toolUse).toMatchObject({ name: 'create_return', input: { confirm: true } });
    const chat = await turn([{ role: 'user', content: [{ text: 'tell me a joke' }] }]);
    expect(chat.content?.[0]?.text).toContain('in stock');
  });

  it('fills inputs from the schemas: product words, a proposal shown earlier, no half objects', async () => {
    const schemaTools: Tool[] = [
      ['check_stock', { product: { type: 'string' } }, ['product']],
      [
        'check_return_eligibility',
        {
          items: {
            type: 'array',
            items: {
              type: 'object',
              properties: { sku: { type: 'string' }, quantity: { type: 'integer' } },
              required: ['sku', 'quantity'],
            },
          },
        },
        [],
      ],
      ['create_return', { proposalId: { type: 'string' } }, ['proposalId']],
    ].map(([name, properties, required]) => ({
      toolSpec: {
        name: name as string,
        inputSchema: { json: { type: 'object', properties: properties as never, required: required as never } },
      },
    }));
    const send = async (messages: NonNullable<ConverseCommandInput['messages']>) =>
      (await client.send(ask('', { messages, toolConfig: { tools: schemaTools } }))).output?.message?.content?.[0];

    expect((await send([{ role: 'user', content: [{ text: 'Is volume 5 in stock?' }] }]))?.toolUse?.input).toEqual({
      product: 'volume 5',
    });
    expect((await send([{ role: 'user', content: [{ text: 'I want to return that one' }] }]))?.toolUse).toMatchObject({
      name: 'check_return_eligibility',
      input: {},
    });
    const create = await send([
      { role: 'user', content: [{ text: 'I want to return that one' }] },
      { role: 'assistant', content: [{ text: 'Return proposal P-1A2B3C for order …: reply "yes" to confirm.' }] },
      { role: 'user', content: [{ text: 'yes' }] },
    ]);
    expect(create?.toolUse).toMatchObject({ name: 'create_return', input: { proposalId: 'P-1A2B3C' } });
  });
});
