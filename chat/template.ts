import { uuidPattern } from '../domain/ids.ts';
import { findProducts, type Product } from './products.ts';
import { publicProposal, type ToolName, type ToolResult, type TurnContext } from './tools.ts';

// The template responder (SPEC §6): a deterministic intent matcher over the customer's words that answers
// from the same tools as the model, without Bedrock or when Bedrock fails. Its replies are built from
// the tools' data only; nothing in a message or a tool result can make it call a tool it did not choose.

export type Intent =
  | { kind: 'confirm'; proposalId: string | null }
  | { kind: 'decline' }
  | { kind: 'return'; orderId: string | null; product: string | null }
  | { kind: 'stock'; product: string }
  | { kind: 'recent' }
  | { kind: 'status'; orderId: string | null }
  | { kind: 'help' };

const uuidIn = new RegExp(uuidPattern.source.slice(1, -1), 'i');
export const proposalIdIn = /\bP-[0-9A-F]{6}\b/i;

/** What the customer asks for. Confirmations must be short and start with the yes: "yes", "Confirm P-1A2B3C". */
export function matchIntent(message: string): Intent {
  const text = message.trim();
  const lower = text.toLowerCase();
  const orderId = uuidIn.exec(text)?.[0].toLowerCase() ?? null;
  if (
    text.length <= 80 &&
    /^(yes|yep|yeah|y|confirm|confirmed|ok|okay|sure|go ahead|please do|do it)\b/i.test(text) &&
    !/\b(no|not|don'?t|cancel)\b/i.test(text)
  ) {
    return { kind: 'confirm', proposalId: proposalIdIn.exec(text)?.[0].toUpperCase() ?? null };
  }
  if (/^(no|nope|cancel|never ?mind|don'?t)\b/i.test(text)) return { kind: 'decline' };
  if (/\b(return|refund|send (it|this|them) back)\b/.test(lower)) {
    const product = /\breturn\s+(?:the\s+|my\s+)?(.+?)(?:\s+from\b|[.?!]|$)/i.exec(text)?.[1] ?? null;
    const generic =
      product === null || /^(it|this|that|that one|this one|them|these|those|an? item|my order)$/i.test(product);
    return { kind: 'return', orderId, product: generic || orderId ? null : product };
  }
  if (/\b(in stock|stock|available|availability|restock)\b/.test(lower)) return { kind: 'stock', product: text };
  if (/\b(recent|my orders|last orders?|order history|orders i)\b/.test(lower)) return { kind: 'recent' };
  if (orderId || /\b(where|status|track|tracking|package|parcel|deliver(y|ed)?|shipped|arrive|order)\b/.test(lower)) {
    return { kind: 'status', orderId };
  }
  return { kind: 'help' };
}

export type CallTool = (name: ToolName, input: Record<string, unknown>) => Promise<ToolResult>;

/** One turn on templates: at most two tool calls, a reply built from their data. */
export async function templateReply(ctx: TurnContext, message: string, call: CallTool): Promise<string> {
  if (ctx.created) return createdReply(ctx.created);
  const intent = matchIntent(message);
  switch (intent.kind) {
    case 'confirm': {
      const open = ctx.session.proposal;
      if (!open || ctx.confirmedProposalId !== open.id) {
        return open
          ? `To go ahead with return proposal ${open.id}, reply "yes" in a message of its own.`
          : 'There is nothing waiting for your confirmation. Tell me what you would like to do.';
      }
      const result = await call('create_return', { proposalId: open.id });
      if (ctx.created) return createdReply(ctx.created);
      return `The return could not be created: ${String(result.data.message)}`;
    }
    case 'decline':
      if (ctx.session.proposal) {
        const id = ctx.session.proposal.id;
        ctx.session.proposal = null;
        return `Okay, I dropped return proposal ${id}. Nothing was returned.`;
      }
      return 'Okay. Anything else I can help with?';
    case 'status': {
      const result = await call('get_order_status', intent.orderId ? { orderId: intent.orderId } : {});
      return result.ok ? statusReply(result.data) : refusalReply(result);
    }
    case 'recent': {
      const result = await call('get_recent_orders', { limit: 5 });
      if (!result.ok) return refusalReply(result);
      const orders = result.data.orders as Array<{ orderId: string; status: string; placedAt: string }>;
      if (orders.length === 0) return 'You have no orders yet.';
      return `Your recent orders:\n${orders.map((o) => `- ${o.orderId}: ${o.status}, placed ${o.placedAt.slice(0, 10)}`).join('\n')}`;
    }
    case 'stock': {
      const result = await call('check_stock', { product: intent.product });
      if (!result.ok) return refusalReply(result);
      const d = result.data as {
        name: string;
        sku: string;
        availability: string;
        available: number;
        restockDate: string | null;
      };
      const restock = d.restockDate ? ` Restock expected ${d.restockDate}.` : '';
      if (d.availability === 'out') return `${d.name} (${d.sku}) is out of stock.${restock}`;
      const low = d.availability === 'low' ? ', but only a few are left' : '';
      return `${d.name} (${d.sku}) is in stock${low}: ${d.available} available.${restock}`;
    }
    case 'return':
      return returnReply(ctx, intent, call);
    case 'help':
      return 'I can tell you where an order is, list your recent orders, check whether a volume is in stock, and start a return. What would you like?';
  }
}

async function returnReply(
  ctx: TurnContext,
  intent: { orderId: string | null; product: string | null },
  call: CallTool,
): Promise<string> {
  const { session } = ctx;
  let orderId = intent.orderId;
  let items: Array<{ sku: string; quantity: number }> | undefined;
  if (intent.product) {
    // "return the Chainsaw Man" after the order was read: the order line that name matches.
    const known: Product[] = session.items.filter((i) => orderId === null || i.orderId === orderId);
    const matches = findProducts(known, intent.product);
    const lines = session.items.filter(
      (i) => matches.some((m) => m.sku === i.sku) && (!orderId || i.orderId === orderId),
    );
    if (lines.length === 1) {
      orderId = lines[0]!.orderId;
      items = [{ sku: lines[0]!.sku, quantity: lines[0]!.quantity }];
    } else if (lines.length > 1) {
      return `Which one do you mean? ${lines.map((l) => `${l.name} (order ${l.orderId})`).join('; ')}`;
    }
  }
  if (!orderId && !session.focus && session.orders.length !== 1) {
    if (session.orders.length === 0) {
      const recent = await call('get_recent_orders', { limit: 5 });
      const orders = (recent.data.orders ?? []) as Array<{ orderId: string; status: string }>;
      if (orders.length === 0) return 'You have no orders to return anything from.';
      if (orders.length > 1) return `Which order is it? ${orders.map((o) => `${o.orderId} (${o.status})`).join(', ')}`;
      orderId = orders[0]!.orderId;
    } else {
      return `Which order do you mean? ${session.orders.slice(0, 5).join(', ')}`;
    }
  }
  const result = await call('check_return_eligibility', {
    ...(orderId ? { orderId } : {}),
    ...(items ? { items } : {}),
  });
  if (!result.ok) {
    if (result.data.error === 'ambiguous_item') {
      const candidates = result.data.candidates as Array<{ sku: string; name: string; quantity: number }>;
      return `Which item would you like to return? ${candidates.map((c) => `${c.name} (${c.sku}) ×${c.quantity}`).join('; ')}`;
    }
    return refusalReply(result);
  }
  if (!result.data.eligible) {
    const verdicts = result.data.items as Array<{ sku: string; eligible: boolean; reason?: string }>;
    const why =
      (result.data.refusal as string | null) ?? verdicts.flatMap((v) => (v.reason ? [v.reason] : [])).join('; ');
    return `That cannot be returned: ${why}`;
  }
  return proposalText(ctx.session.proposal!);
}

export function proposalText(p: NonNullable<TurnContext['session']['proposal']>): string {
  const shown = publicProposal(p);
  const lines = shown.items.map((i) => `- ${i.quantity} × ${i.name} (${i.sku}): ${money(i.refundCents, p.currency)}`);
  return [
    `Return proposal ${p.id} for order ${p.orderId}:`,
    ...lines,
    `Refund: ${money(p.refundCents, p.currency)}. Reply "yes" to confirm and I will create the return.`,
  ].join('\n');
}

function createdReply(created: NonNullable<TurnContext['created']>): string {
  return `Done: return ${created.rma} is created for order ${created.orderId}. Your refund of ${money(created.refundCents, created.currency)} follows once the items arrive. A return label is on its way.`;
}

function statusReply(d: Record<string, unknown>): string {
  const order = d as {
    orderId: string;
    status: string;
    shipment: { carrier: string; trackingNumber: string | null; status: string; deliveredAt: string | null } | null;
  };
  const parts = [`Order ${order.orderId} is ${order.status.toLowerCase()}.`];
  const s = order.shipment;
  if (s) {
    parts.push(`The shipment with ${s.carrier} is ${s.status.replaceAll('_', ' ')}`);
    if (s.trackingNumber) parts.push(`(tracking number ${s.trackingNumber})`);
    if (s.deliveredAt) parts.push(`and was delivered ${s.deliveredAt.slice(0, 10)}`);
    parts[parts.length - 1] += '.';
  } else {
    parts.push('It has not shipped yet.');
  }
  return parts.join(' ');
}

function refusalReply(result: ToolResult): string {
  const { error, message } = result.data as { error: string; message: string };
  if (error === 'not_found') return 'I could not find that order among yours.';
  if (error === 'ambiguous_product') {
    const candidates = result.data.candidates as Array<{ sku: string; name: string }>;
    return `Which one do you mean? ${candidates.map((c) => `${c.name} (${c.sku})`).join('; ')}`;
  }
  return message;
}

const money = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency}`;
