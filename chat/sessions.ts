import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { RedisKeys } from '../cache/keys.ts';
import { AppError } from '../domain/errors.ts';
import type { RedisClient } from '../runtime/redis.ts';

// A conversation with the support assistant, kept in Redis for CHAT_SESSION_TTL_MS after its last turn.
// It belongs to the customer who opened it: another customer's session id is "not found", like their
// orders. It remembers what was talked about (orders, items) so "return that one" resolves, the open
// return proposal with its quote's token (never shown to the model or the customer), and the last few
// messages as plain text for the model's context.

export const sessionIdPattern = /^chs_[A-Za-z0-9_-]{22}$/;
const HISTORY_MESSAGES = 12;

const proposalSchema = z.object({
  id: z.string(),
  /** The turn that showed it: only a later turn may confirm it. */
  turn: z.number().int(),
  orderId: z.string(),
  items: z.array(z.object({ sku: z.string(), name: z.string(), quantity: z.number().int(), refundCents: z.int() })),
  refundCents: z.int(),
  currency: z.string(),
  expiresAt: z.number(),
  token: z.string(),
});
export type Proposal = z.infer<typeof proposalSchema>;

const sessionSchema = z.object({
  id: z.string(),
  customerId: z.string(),
  turn: z.number().int(),
  /** Orders mentioned, most recent first; `focus` is the one order the conversation is about, if any. */
  orders: z.array(z.string()),
  focus: z.string().nullable(),
  /** Items of the orders read, so a product the customer names resolves to an order line. */
  items: z.array(z.object({ orderId: z.string(), sku: z.string(), name: z.string(), quantity: z.number().int() })),
  region: z.string().nullable(),
  proposal: proposalSchema.nullable(),
  history: z.array(z.object({ role: z.enum(['user', 'assistant']), text: z.string() })),
});
export type ChatSession = z.infer<typeof sessionSchema>;

export function createChatSessions(redis: RedisClient, keys: RedisKeys, ttlMs: number) {
  return {
    /** A new session, or the customer's own one; a missing, expired or foreign one is 404. */
    async open(customerId: string, sessionId: string | undefined): Promise<ChatSession> {
      if (sessionId === undefined) {
        return {
          id: `chs_${randomBytes(16).toString('base64url')}`,
          customerId,
          turn: 0,
          orders: [],
          focus: null,
          items: [],
          region: null,
          proposal: null,
          history: [],
        };
      }
      const raw = await redis.get(keys.chatSession(sessionId));
      const parsed = raw === null ? null : sessionSchema.safeParse(parseJson(raw));
      // Another customer's session is not the caller's business: same answer as one that never existed.
      if (!parsed?.success || parsed.data.customerId !== customerId) {
        throw new AppError('not_found', `Chat session ${sessionId} not found (or expired): start a new one`);
      }
      return parsed.data;
    },
    async save(session: ChatSession): Promise<void> {
      const kept = { ...session, history: session.history.slice(-HISTORY_MESSAGES) };
      await redis.set(keys.chatSession(session.id), JSON.stringify(kept), 'PX', ttlMs);
    },
  };
}
export type ChatSessions = ReturnType<typeof createChatSessions>;

/** Remembers orders talked about, most recent first, at most ten. */
export function rememberOrders(session: ChatSession, orderIds: readonly string[], focus: boolean): void {
  session.orders = [...new Set([...orderIds, ...session.orders])].slice(0, 10);
  if (focus && orderIds.length === 1) session.focus = orderIds[0]!;
  else if (orderIds.length > 1) session.focus = null;
}

export function rememberItems(session: ChatSession, orderId: string, items: ChatSession['items']): void {
  session.items = [...items, ...session.items.filter((i) => i.orderId !== orderId)].slice(0, 50);
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}
