import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Caller } from '../api/auth.ts';
import { createReturn, quote, type ReturnDeps } from '../api/request-return.ts';
import type { OrderReader } from '../cache/order-reader.ts';
import type { StockReader } from '../cache/stock-reader.ts';
import { AppError } from '../domain/errors.ts';
import { uuidPattern } from '../domain/ids.ts';
import { listCatalog } from '../sql/catalog.ts';
import { listRecentOrders } from '../sql/orders.ts';
import { findProducts } from './products.ts';
import { type ChatSession, type Proposal, rememberItems, rememberOrders } from './sessions.ts';

// The assistant's five tools (SPEC §6): the API's own features called in-process for the signed-in
// customer. No tool takes a customer id: the customer is the caller, so the model can name another
// customer's order id at most, and that is "not found" like at GET /orders/{id}. Only create_return
// writes, and only with the session's stored proposal that the customer confirmed in a later message:
// the model never sees the quote's token and cannot supply one (inputs are strict objects).

export type ToolDeps = { orders: OrderReader; stock: StockReader; returns: ReturnDeps };

/** One turn's view of the conversation: who is asking, and which proposal (if any) the message confirmed. */
export type TurnContext = {
  caller: Caller & { customerId: string };
  session: ChatSession;
  /** Set when the customer's message confirmed the open proposal shown in an earlier turn. */
  confirmedProposalId: string | null;
  /** The return this turn created, so a fallback answer reports it rather than asking again. */
  created: { rma: string; refundCents: number; currency: string; orderId: string } | null;
};

export type ToolResult = { ok: boolean; data: Record<string, unknown> };

const orderId = z.string().regex(uuidPattern, 'must be an order id (a UUID)');
const inputs = {
  get_order_status: z.strictObject({ orderId: orderId.optional() }),
  get_recent_orders: z.strictObject({ limit: z.int().min(1).max(10).optional() }),
  check_stock: z.strictObject({
    product: z.string().min(1).max(100),
    region: z
      .string()
      .regex(/^[a-z]{2}$/)
      .optional(),
  }),
  check_return_eligibility: z.strictObject({
    orderId: orderId.optional(),
    items: z
      .array(z.strictObject({ sku: z.string().min(1).max(64), quantity: z.int().min(1).max(100) }))
      .min(1)
      .max(20)
      .optional(),
    reason: z.string().max(200).optional(),
  }),
  create_return: z.strictObject({ proposalId: z.string().min(1).max(32) }),
};
export type ToolName = keyof typeof inputs;
export const toolNames = Object.keys(inputs) as ToolName[];
export const isToolName = (name: string): name is ToolName => Object.hasOwn(inputs, name);

const descriptions: Record<ToolName, string> = {
  get_order_status:
    "The status, items and shipment tracking of one of the customer's orders. Without orderId: the order this conversation is about, else the newest.",
  get_recent_orders: "The customer's most recent orders, newest first (default 5).",
  check_stock:
    'Whether a product is in stock. `product` is a SKU or the words the customer used, e.g. "volume 5" or "Berserk 42".',
  check_return_eligibility:
    'Whether items of an order may be returned and the refund. Without orderId or items: the order and item the conversation is about. An eligible answer is a proposal to show the customer; it is never a return.',
  create_return:
    'Creates the return of a proposal, only after the customer confirmed that proposal in a later message. Otherwise it refuses.',
};

/** The toolConfig of a Converse request: each tool's input as JSON Schema, from the zod schema that checks it. */
export function toolSpecs() {
  return toolNames.map((name) => {
    const { $schema: _, ...schema } = z.toJSONSchema(inputs[name]) as Record<string, unknown>;
    return { toolSpec: { name, description: descriptions[name], inputSchema: { json: schema } } };
  });
}

/** The input checked against the tool's schema, or null when it does not fit (a model's malformed call). */
export function parseToolInput(name: ToolName, input: unknown): Record<string, unknown> | null {
  const parsed = inputs[name].safeParse(input);
  return parsed.success ? (parsed.data as Record<string, unknown>) : null;
}

const refused = (error: string, message: string, extra: Record<string, unknown> = {}): ToolResult => ({
  ok: false,
  data: { error, message, ...extra },
});

/** Runs a tool whose input parseToolInput accepted. Business refusals are results; so is an outage. */
export async function runTool(deps: ToolDeps, ctx: TurnContext, name: ToolName, input: unknown): Promise<ToolResult> {
  try {
    switch (name) {
      case 'get_order_status':
        return await orderStatus(deps, ctx, inputs.get_order_status.parse(input));
      case 'get_recent_orders':
        return await recentOrders(deps, ctx, inputs.get_recent_orders.parse(input).limit ?? 5);
      case 'check_stock':
        return await checkStock(deps, ctx, inputs.check_stock.parse(input));
      case 'check_return_eligibility':
        return await returnEligibility(deps, ctx, inputs.check_return_eligibility.parse(input));
      case 'create_return':
        return await confirmedReturn(deps, ctx, inputs.create_return.parse(input).proposalId);
    }
  } catch (error) {
    if (error instanceof AppError && error.code !== 'internal' && !error.retryable) {
      return refused(error.code, error.message);
    }
    deps.returns.log.warn({ tool: name, err: (error as Error).message }, 'assistant tool failed');
    return refused('unavailable', 'This cannot be looked up right now; try again in a moment');
  }
}

type OrderView = {
  id: string;
  region: string;
  currency: string;
  totalCents: number;
  createdAt: string;
  items: Array<{ sku: string; name: string; quantity: number }>;
  status: string;
  returns: Array<{ rma: string; status: string; refundCents: number }>;
  shipment: {
    carrier: string;
    trackingNumber: string | null;
    status: string;
    deliveredAt: string | null;
    events: Array<{ status: string; description: string; at: string }>;
  } | null;
};

/** The order as GET /orders/{id} shows it to its owner; another customer's is "not found". */
async function readOwnOrder(deps: ToolDeps, ctx: TurnContext, id: string): Promise<OrderView> {
  const read = await deps.orders.read(id);
  if (read.customerId !== ctx.caller.customerId) throw new AppError('not_found', `Order ${id} not found`);
  const view = { ...JSON.parse(read.placed.json), ...JSON.parse(read.status.json), ...JSON.parse(read.tracking.json) };
  return view as OrderView;
}

async function orderStatus(deps: ToolDeps, ctx: TurnContext, input: { orderId?: string }): Promise<ToolResult> {
  let id = input.orderId ?? ctx.session.focus;
  if (!id) {
    const [newest] = await listRecentOrders(deps.returns.db, ctx.caller.customerId, 1);
    if (!newest) return refused('no_orders', 'The customer has no orders yet');
    id = newest.id;
  }
  const order = await readOwnOrder(deps, ctx, id);
  rememberOrders(ctx.session, [order.id], true);
  rememberItems(
    ctx.session,
    order.id,
    order.items.map((i) => ({ orderId: order.id, sku: i.sku, name: i.name, quantity: i.quantity })),
  );
  ctx.session.region = order.region;
  const shipment = order.shipment;
  return {
    ok: true,
    data: {
      orderId: order.id,
      status: order.status,
      placedAt: order.createdAt,
      total: { cents: order.totalCents, currency: order.currency },
      items: order.items.map((i) => ({ sku: i.sku, name: i.name, quantity: i.quantity })),
      shipment: shipment && {
        carrier: shipment.carrier,
        trackingNumber: shipment.trackingNumber,
        status: shipment.status,
        deliveredAt: shipment.deliveredAt,
        latestEvent: shipment.events.at(-1) ?? null,
      },
      returns: order.returns.map((r) => ({ rma: r.rma, status: r.status, refundCents: r.refundCents })),
    },
  };
}

async function recentOrders(deps: ToolDeps, ctx: TurnContext, limit: number): Promise<ToolResult> {
  const orders = await listRecentOrders(deps.returns.db, ctx.caller.customerId, limit);
  rememberOrders(
    ctx.session,
    orders.map((o) => o.id),
    false,
  );
  return {
    ok: true,
    data: {
      orders: orders.map((o) => ({
        orderId: o.id,
        status: o.status,
        units: o.items,
        total: { cents: o.total_cents, currency: o.currency },
        placedAt: new Date(o.created_at).toISOString(),
      })),
    },
  };
}

async function checkStock(
  deps: ToolDeps,
  ctx: TurnContext,
  input: { product: string; region?: string },
): Promise<ToolResult> {
  const matches = findProducts(await listCatalog(deps.returns.db), input.product);
  if (matches.length === 0) return refused('unknown_product', `No product matches "${input.product}"`);
  if (matches.length > 1) {
    return refused('ambiguous_product', 'Several products match: ask which one', {
      candidates: matches.slice(0, 5).map((p) => ({ sku: p.sku, name: p.name })),
    });
  }
  const product = matches[0]!;
  const region = input.region ?? ctx.session.region ?? 'eu';
  const answer = await deps.stock.read(product.sku, region);
  return {
    ok: true,
    data: {
      sku: product.sku,
      name: product.name,
      region,
      availability: answer.availability,
      available: answer.available,
      restockDate: answer.restockDate,
      purchaseLimit: answer.purchaseLimit,
      warning: answer.warning,
    },
  };
}

async function returnEligibility(
  deps: ToolDeps,
  ctx: TurnContext,
  input: { orderId?: string; items?: Array<{ sku: string; quantity: number }>; reason?: string },
): Promise<ToolResult> {
  const { session } = ctx;
  const id = input.orderId ?? session.focus ?? (session.orders.length === 1 ? session.orders[0] : undefined);
  if (!id) {
    return refused('ambiguous_order', 'Which order? Ask the customer, or list their recent orders', {
      candidates: session.orders.slice(0, 5),
    });
  }
  const order = await readOwnOrder(deps, ctx, id);
  rememberOrders(session, [order.id], true);
  let items = input.items;
  if (!items) {
    if (order.items.length !== 1) {
      return refused('ambiguous_item', 'Which item of the order? Ask the customer', {
        orderId: order.id,
        candidates: order.items.map((i) => ({ sku: i.sku, name: i.name, quantity: i.quantity })),
      });
    }
    items = [{ sku: order.items[0]!.sku, quantity: order.items[0]!.quantity }];
  }
  const answer = await quote(deps.returns, ctx.caller, order.id, {
    items: items.map((i) => ({ orderItemId: i.sku, quantity: i.quantity })),
    reason: input.reason?.trim() || 'Asked for through the support assistant',
  });
  if (!answer.eligible || !answer.token || answer.expiresAt === undefined) {
    return {
      ok: true,
      data: {
        orderId: order.id,
        eligible: false,
        refusal: answer.refusal?.message ?? null,
        items: answer.items.map((v) => ({
          sku: v.orderItemId,
          quantity: v.quantity,
          eligible: v.eligible,
          ...(v.eligible ? {} : { reason: v.message }),
        })),
      },
    };
  }
  const nameOf = new Map(order.items.map((i) => [i.sku, i.name]));
  const proposal: Proposal = {
    id: `P-${randomBytes(3).toString('hex').toUpperCase()}`,
    turn: session.turn,
    orderId: order.id,
    items: answer.items.map((v) => ({
      sku: v.orderItemId,
      name: nameOf.get(v.orderItemId) ?? v.orderItemId,
      quantity: v.quantity,
      refundCents: v.eligible ? v.refundCents : 0,
    })),
    refundCents: answer.refundCents,
    currency: order.currency,
    expiresAt: answer.expiresAt,
    token: answer.token,
  };
  // A new proposal replaces the open one: only the last one shown can be confirmed.
  session.proposal = proposal;
  return {
    ok: true,
    data: {
      orderId: order.id,
      eligible: true,
      proposal: publicProposal(proposal),
      next: 'Show this proposal to the customer and ask them to confirm it. Nothing is returned until they do.',
    },
  };
}

async function confirmedReturn(deps: ToolDeps, ctx: TurnContext, proposalId: string): Promise<ToolResult> {
  const proposal = ctx.session.proposal;
  if (!proposal || proposal.id !== proposalId || ctx.confirmedProposalId !== proposal.id) {
    return refused(
      'needs_confirmation',
      'A return is created only after the customer confirms the proposal shown to them, in their next message',
      proposal ? { openProposal: proposal.id } : {},
    );
  }
  // Derived from the proposal: a retried or repeated confirmation replays the same return.
  const key = `chat-${createHash('sha256').update(`${ctx.session.id}\n${proposal.id}`).digest('hex').slice(0, 32)}`;
  let created: Awaited<ReturnType<typeof createReturn>>;
  try {
    created = await createReturn(deps.returns, ctx.caller, proposal.orderId, proposal.token, key);
  } catch (error) {
    // Refused for good (expired, used, items returned already): the proposal is closed. A transient
    // failure keeps it, so a later "yes" tries again with the same key.
    if (error instanceof AppError && !error.retryable) ctx.session.proposal = null;
    throw error;
  }
  ctx.session.proposal = null;
  ctx.created = {
    rma: created.body.rma,
    refundCents: created.body.refundCents,
    currency: proposal.currency,
    orderId: proposal.orderId,
  };
  return {
    ok: true,
    data: {
      rma: created.body.rma,
      status: created.body.status,
      orderId: proposal.orderId,
      refund: { cents: created.body.refundCents, currency: proposal.currency },
    },
  };
}

/** What the customer and the model see of a proposal: everything but the token. */
export function publicProposal(p: Proposal) {
  return {
    proposalId: p.id,
    orderId: p.orderId,
    items: p.items.map((i) => ({ sku: i.sku, name: i.name, quantity: i.quantity, refundCents: i.refundCents })),
    refundCents: p.refundCents,
    currency: p.currency,
    expiresAt: new Date(p.expiresAt).toISOString(),
  };
}
