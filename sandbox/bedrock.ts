import { Hono } from 'hono';
import { z } from 'zod';
import { devReply } from './bedrock-responder.ts';
import { createRandom } from './faults.ts';
import { parseBody } from './protocol.ts';

// A fake Amazon Bedrock runtime speaking the Converse API as @aws-sdk/client-bedrock-runtime sends and
// parses it (restJson1): POST /model/{modelId}/converse with a JSON body; 200 with `output.message`,
// `stopReason`, `usage` and `metrics`; an error is its status, the `x-amzn-errortype` header naming the
// exception (the SDK picks its class from it) and a `{ message }` body. Each call takes the next
// scripted reply; with none left, a small rule-based model (bedrock-responder.ts) answers, so the
// assistant works in `npm run dev` without AWS.

export type ScriptedReply =
  | { text: string; delayMs?: number }
  | { toolUse: Array<{ name: string; input: unknown; toolUseId?: string }>; text?: string; delayMs?: number }
  | { error: { status: number; type: string; message: string }; delayMs?: number }
  | { raw: unknown; status?: number; delayMs?: number };
// biome-ignore lint/suspicious/noExplicitAny: the Converse request as the client sent it, unvalidated
export type SeenRequest = { modelId: string; body: any };

export type ContentBlock = {
  text?: string;
  toolUse?: { toolUseId: string; name: string; input: unknown };
  toolResult?: { toolUseId: string; content?: Array<{ text?: string; json?: unknown }>; status?: string };
};
export type Message = { role: 'user' | 'assistant'; content: ContentBlock[] };
export type ToolSpec = { name: string; description?: string; inputSchema?: { json?: unknown } };

const delay = z.number().int().min(0).optional();
export const scriptedReplySchema: z.ZodType<ScriptedReply> = z.union([
  z.object({ text: z.string(), delayMs: delay }).strict(),
  z
    .object({
      toolUse: z.array(z.object({ name: z.string(), input: z.unknown(), toolUseId: z.string().optional() })),
      text: z.string().optional(),
      delayMs: delay,
    })
    .strict(),
  z
    .object({
      error: z.object({ status: z.number().int().min(400).max(599), type: z.string().min(1), message: z.string() }),
      delayMs: delay,
    })
    .strict(),
  z.object({ raw: z.unknown(), status: z.number().int().min(100).max(599).optional(), delayMs: delay }).strict(),
]) as z.ZodType<ScriptedReply>;

export type FakeBedrock = {
  app: Hono;
  script(replies: ScriptedReply[]): void;
  requests(): SeenRequest[];
  reset(): void;
};

export function createFakeBedrock(options: { seed?: number } = {}): FakeBedrock {
  const random = createRandom(options.seed ?? 1);
  const queue: ScriptedReply[] = [];
  const seen: SeenRequest[] = [];
  /** Answers held back by a delay, released (as a dropped answer) by reset(). */
  const waiting = new Set<() => void>();

  const newToolUseId = () => `tooluse_${Math.floor(random.next() * 2 ** 48).toString(36)}`;

  function wait(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        waiting.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiting.add(done);
      // The client gave up (the SDK's abortSignal closes the connection): stop holding the answer.
      signal.addEventListener('abort', done);
    });
  }

  function answer(message: Message, stopReason: string): object {
    const text = message.content.map((block) => block.text ?? JSON.stringify(block.toolUse?.input ?? '')).join(' ');
    const outputTokens = Math.max(1, Math.ceil(text.length / 4));
    return {
      output: { message },
      stopReason,
      usage: { inputTokens: 100, outputTokens, totalTokens: 100 + outputTokens },
      metrics: { latencyMs: 1 },
    };
  }

  function toMessage(reply: { text?: string; toolUse?: Array<{ name: string; input: unknown; toolUseId?: string }> }) {
    const content: ContentBlock[] = [];
    if (reply.text !== undefined) content.push({ text: reply.text });
    for (const use of reply.toolUse ?? []) {
      content.push({ toolUse: { toolUseId: use.toolUseId ?? newToolUseId(), name: use.name, input: use.input } });
    }
    return { role: 'assistant', content } satisfies Message;
  }

  const app = new Hono();
  app.post('/model/:modelId/converse', async (c) => {
    const requestId = crypto.randomUUID();
    const failWith = (status: 400 | 403, type: string, message: string) =>
      c.json({ message }, status, { 'x-amzn-errortype': type, 'x-amzn-requestid': requestId });
    if (!c.req.header('authorization')?.startsWith('AWS4-HMAC-SHA256 ')) {
      return failWith(403, 'UnrecognizedClientException', 'The request is not signed with AWS Signature Version 4');
    }
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return failWith(400, 'SerializationException', 'The request body is not valid JSON');
    }
    const modelId = c.req.param('modelId');
    seen.push({ modelId, body });
    const problem = requestProblem(body);
    if (problem) return failWith(400, 'ValidationException', problem);

    const reply = queue.shift();
    if (reply?.delayMs) await wait(reply.delayMs, c.req.raw.signal);
    const headers = { 'x-amzn-requestid': requestId };
    if (!reply) {
      const { messages, toolConfig, system } = body as {
        messages: Message[];
        toolConfig?: { tools?: Array<{ toolSpec?: ToolSpec }> };
        system?: Array<{ text?: string }>;
      };
      const tools = (toolConfig?.tools ?? []).flatMap((tool) => (tool.toolSpec ? [tool.toolSpec] : []));
      const dev = devReply(messages, tools, (system ?? []).map((block) => block.text ?? '').join('\n'));
      const message = toMessage(dev);
      return c.json(answer(message, dev.toolUse ? 'tool_use' : 'end_turn'), 200, headers);
    }
    if ('error' in reply) {
      return c.json({ message: reply.error.message }, reply.error.status as 400, {
        ...headers,
        'x-amzn-errortype': reply.error.type,
      });
    }
    if ('raw' in reply) {
      const text = typeof reply.raw === 'string' ? reply.raw : JSON.stringify(reply.raw);
      return c.body(text, (reply.status ?? 200) as 200, { ...headers, 'content-type': 'application/json' });
    }
    const message = toMessage(reply);
    return c.json(answer(message, 'toolUse' in reply ? 'tool_use' : 'end_turn'), 200, headers);
  });

  // Out-of-process control (a test driving `npm run start:sandbox`): script the next answers, read the
  // requests seen, forget both.
  app.put('/_sandbox/bedrock/script', async (c) => {
    const parsed = await parseBody(c, z.array(scriptedReplySchema));
    if (!parsed.ok) return parsed.response;
    queue.push(...parsed.data);
    return c.json({ queued: queue.length });
  });
  app.get('/_sandbox/bedrock/requests', (c) => c.json(seen));
  app.post('/_sandbox/bedrock/reset', (c) => {
    reset();
    return c.json({ status: 'reset' });
  });
  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  function reset(): void {
    queue.length = 0;
    seen.length = 0;
    random.restart();
    for (const release of [...waiting]) release();
  }

  return {
    app,
    script: (replies) => void queue.push(...replies),
    requests: () => structuredClone(seen),
    reset,
  };
}

/**
 * What Bedrock itself refuses with a ValidationException before any model runs: no messages, turns that
 * do not alternate or start with the user, tool blocks without a toolConfig, and a turn after tool use
 * that does not answer exactly the toolUse ids of the turn before. Catches an assistant that would fail
 * against the real service.
 */
export function requestProblem(body: unknown): string | undefined {
  const request = body as { messages?: unknown; toolConfig?: unknown };
  if (!request || typeof request !== 'object' || !Array.isArray(request.messages) || request.messages.length === 0) {
    return 'messages: must be a non-empty array';
  }
  const messages = request.messages as Message[];
  let previous: Message | undefined;
  for (const [index, message] of messages.entries()) {
    const at = `messages.${index}`;
    if (!message || (message.role !== 'user' && message.role !== 'assistant') || !Array.isArray(message.content)) {
      return `${at}: needs a role (user or assistant) and a content array`;
    }
    if (index === 0 && message.role !== 'user') return 'A conversation must start with a user message.';
    if (previous?.role === message.role) return 'A conversation must alternate between user and assistant roles.';
    if (message.content.length === 0) return `${at}.content: must not be empty`;
    const uses = message.content.some((block) => block.toolUse || block.toolResult);
    if (uses && !request.toolConfig) {
      return 'The toolConfig field must be defined when using toolUse and toolResult content blocks.';
    }
    const asked = (previous?.content ?? []).flatMap((block) => (block.toolUse ? [block.toolUse.toolUseId] : []));
    const answered = message.content.flatMap((block) => (block.toolResult ? [block.toolResult.toolUseId] : []));
    const missing = asked.filter((id) => !answered.includes(id));
    if (message.role === 'user' && missing.length > 0) {
      return `Expected toolResult blocks at ${at}.content for the following Ids: ${missing.join(', ')}`;
    }
    if (answered.some((id) => !asked.includes(id))) {
      return `The number of toolResult blocks at ${at}.content exceeds the number of toolUse blocks of previous turn.`;
    }
    previous = message;
  }
  return undefined;
}
