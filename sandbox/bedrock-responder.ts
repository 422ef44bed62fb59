import type { Message, ToolSpec } from './bedrock.ts';

// The fake Bedrock's model when no reply is scripted: a few deterministic rules, so that `npm run dev`
// chats without AWS. It reads the tools from the request's toolConfig (their names, else their
// descriptions, say which is which; their JSON schemas say what input to send), calls the one the
// customer's last message asks for, and once a toolResult comes back answers with a sentence built
// from it. It asks for the return-creating tool only when the customer's message is a confirmation:
// whether that confirmation counts is the assistant's decision, not this model's.

export type DevReply = { text?: string; toolUse?: Array<{ name: string; input: unknown }> };
type Kind = 'create' | 'quote' | 'stock' | 'recent' | 'status';
type Intent = Kind | 'help';
type Json = Record<string, unknown>;

const kindPatterns: Array<[Kind, RegExp]> = [
  ['create', /(create|initiate|start|submit|confirm|make|open).*return|return.*(create|initiate|confirm)/],
  ['quote', /quote|eligib|check.*return|return.*check/],
  ['stock', /stock|inventory|availab/],
  ['recent', /recent|list.*order|order.*(list|history)/],
  ['status', /status|track|order/],
];

const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

export function intentOf(text: string): Intent {
  const t = text.toLowerCase();
  if (/^\s*(yes|yep|yeah|confirm|ok|okay|sure|go ahead|please do)\b/.test(t)) return 'create';
  if (/\breturn|refund|send (it|this|that) back/.test(t)) return 'quote';
  if (/\bstock\b|availab|inventory|\bleft\b/.test(t)) return 'stock';
  if (/\brecent|my orders|last orders|order history|previous orders/.test(t)) return 'recent';
  if (/\bwhere|status|package|parcel|track|deliver|ship|\border\b/.test(t)) return 'status';
  return 'help';
}

/** Which tool does what: by name first, by description when no name tells. */
export function toolKinds(tools: ToolSpec[]): Map<Kind, ToolSpec> {
  const found = new Map<Kind, ToolSpec>();
  for (const field of ['name', 'description'] as const) {
    for (const tool of tools) {
      if ([...found.values()].includes(tool)) continue;
      const words = (tool[field] ?? '').toLowerCase().replace(/[_-]/g, ' ');
      const kind = kindPatterns.find(([k, pattern]) => !found.has(k) && pattern.test(words))?.[0];
      if (kind) found.set(kind, tool);
    }
  }
  return found;
}

/** `system` is the request's system prompt, read like the conversation for ids it mentions. */
export function devReply(messages: Message[], tools: ToolSpec[], system = ''): DevReply {
  const kinds = toolKinds(tools);
  const questionAt = messages.findLastIndex((m) => m.role === 'user' && m.content.some((b) => b.text));
  const question = (messages[questionAt]?.content ?? []).flatMap((b) => (b.text ? [b.text] : [])).join(' ');
  const intent = intentOf(question);
  const last = messages.at(-1);
  const results = (last?.content ?? []).flatMap((b) => (b.toolResult ? [b.toolResult] : []));

  if (results.length === 0) {
    if (intent === 'help') return { text: helpText };
    // "Where is my order?" with no order mentioned yet: the recent orders first, to find it.
    const unknownOrder = intent === 'status' && !JSON.stringify(messages).match(uuid) && kinds.has('recent');
    const tool = kinds.get(unknownOrder ? 'recent' : intent);
    if (!tool) return { text: `I cannot do that here: no ${intent} tool is available.` };
    return { toolUse: [{ name: tool.name, input: inputFor(tool, question, messages, system) }] };
  }

  const calls = new Map(
    messages.flatMap((m) => m.content.flatMap((b) => (b.toolUse ? [[b.toolUse.toolUseId, b.toolUse.name]] : []))),
  );
  const statusTool = kinds.get('status');
  const calledThisTurn = messages.slice(questionAt).flatMap((m) => m.content.flatMap((b) => b.toolUse?.name ?? []));
  // The recent orders named the order the customer asked about: now ask for its status.
  if (intent === 'status' && statusTool && !calledThisTurn.includes(statusTool.name)) {
    const orderId = [...JSON.stringify(results).matchAll(uuid)][0]?.[0];
    if (orderId)
      return { toolUse: [{ name: statusTool.name, input: inputFor(statusTool, orderId, messages, system) }] };
  }
  const kindOf = (name: string | undefined) => [...kinds].find(([, tool]) => tool.name === name)?.[0];
  return {
    text: results.map((r) => describe(kindOf(calls.get(r.toolUseId)), r.status, payloadOf(r.content))).join(' '),
  };
}

const helpText =
  'I can tell you where an order is ("where is my order?"), list your recent orders, check whether an item is in stock ("is BERSERK-42 in stock?") and start a return ("I want to return BERSERK-42").';

function payloadOf(content: Array<{ text?: string; json?: unknown }> | undefined): unknown {
  const block = content?.[0];
  if (block?.json !== undefined) return block.json;
  try {
    return JSON.parse(block?.text ?? '');
  } catch {
    return block?.text ?? '';
  }
}

/** The first scalar under a key matching `key`, depth first. */
function find(value: unknown, key: RegExp): string | number | boolean | undefined {
  if (!value || typeof value !== 'object') return undefined;
  for (const [k, v] of Object.entries(value as Json)) {
    if (key.test(k) && v !== null && typeof v !== 'object') return v as string | number | boolean;
  }
  for (const v of Object.values(value as Json)) {
    const found = find(v, key);
    if (found !== undefined) return found;
  }
  return undefined;
}

const money = (cents: unknown) => (typeof cents === 'number' ? `$${(cents / 100).toFixed(2)}` : undefined);

function describe(kind: Kind | undefined, status: string | undefined, payload: unknown): string {
  const error = find(payload, /^(message|error)$/);
  if (status === 'error' || (payload as Json)?.error) return `Sorry, that did not work: ${error ?? 'an error'}.`;
  if (typeof payload === 'string') return payload;
  const state = find(payload, /^status$/);
  switch (kind) {
    case 'create':
      return `Done: your return ${find(payload, /^rma$/i) ?? ''} is ${state ?? 'requested'}; the label follows.`;
    case 'quote': {
      const refund = money(find(payload, /refund.*cents|^refund$/i));
      const eligible = find(payload, /eligible|token/i);
      return eligible === false || eligible === undefined
        ? `That cannot be returned: ${find(payload, /reason/i) ?? 'it is not eligible'}.`
        : `You can return it for a refund of ${refund ?? 'the amount paid'}. Reply "yes" to confirm.`;
    }
    case 'stock': {
      const what = find(payload, /^name$/) ?? find(payload, /^sku$/i) ?? 'That item';
      const level = find(payload, /^(status|availability)$/) ?? 'unknown';
      return `${what} is ${String(level).replace('_', ' ')} (${find(payload, /^available$|quantity/i) ?? '?'} available).`;
    }
    case 'recent': {
      const list = Object.values(payload as Json).find(Array.isArray) ?? (Array.isArray(payload) ? payload : []);
      const lines = (list as Json[]).slice(0, 5).map((o) => `${find(o, /^id$|orderid/i)} (${find(o, /^status$/)})`);
      return lines.length ? `Your recent orders: ${lines.join(', ')}.` : 'You have no orders yet.';
    }
    default: {
      const tracking = find(payload, /tracking(number)?$/i);
      const id = find(payload, /^id$|^orderid$/i);
      return `Your order ${id ?? ''} is ${state ?? 'being processed'}${tracking ? `; tracking number ${tracking}` : ''}.`;
    }
  }
}

/** The tool's input, filled from its JSON schema with what the conversation mentioned. */
function inputFor(tool: ToolSpec, question: string, messages: Message[], system: string): Json {
  const everything = [system, ...messages.map((m) => JSON.stringify(m.content))].join('\n');
  const orderId = (question.match(uuid) ?? [...everything.matchAll(uuid)].map((m) => m[0])).at(-1);
  const sku = skuIn(question) ?? skusIn(everything).at(-1);
  const region = /\b(eu|us|uk)\b/i.exec(question)?.[1]?.toLowerCase();
  const fill = (schema: Json | undefined, key: string): unknown => {
    const k = key.toLowerCase();
    const type = schema?.type;
    if (Array.isArray(schema?.enum))
      return schema.enum.find((v) => question.toLowerCase().includes(String(v))) ?? schema.enum[0];
    if (type === 'array') {
      const item = fill(schema?.items as Json, k.replace(/s$/, ''));
      return item === undefined ? undefined : [item];
    }
    if (type === 'object') return fillObject(schema);
    if (/order/.test(k) && !/item/.test(k)) return orderId;
    if (/sku|asin|item/.test(k)) return sku;
    if (/product/.test(k)) return sku ?? productWords(question);
    if (/region/.test(k)) return region ?? 'eu';
    if (/quantity|qty|count/.test(k)) return 1;
    if (/limit/.test(k)) return 5;
    if (/reason|message|query|question|text/.test(k)) return question.slice(0, 200);
    if (/confirm/.test(k) && type === 'boolean') return true;
    return latestValue(everything, key) ?? (/proposal/.test(k) ? latestProposal(everything) : undefined);
  };
  const fillObject = (schema: Json | undefined): Json | undefined => {
    const entries = Object.entries((schema?.properties ?? {}) as Record<string, Json>)
      .map(([key, s]) => [key, fill(s, key)] as const)
      .filter(([, v]) => v !== undefined);
    const required = Array.isArray(schema?.required) ? (schema.required as string[]) : [];
    // Half an object is a malformed input: leave it out, so the assistant's own defaults apply.
    if (required.some((key) => !entries.some(([k]) => k === key))) return undefined;
    return entries.length ? Object.fromEntries(entries) : undefined;
  };
  return fillObject(tool.inputSchema?.json as Json) ?? {};
}

function skuIn(text: string): string | undefined {
  const upper = text.replace(uuid, ' ').toUpperCase();
  const explicit = /\b[A-Z]{2,}(?:-[A-Z0-9]+)+\b/.exec(upper)?.[0];
  if (explicit && !explicit.startsWith('RMA-')) return explicit;
  // "Berserk vol. 42" → BERSERK-42, the catalog's shape.
  const named = /\b(?!VOL(?:UME)?\b)([A-Z]{3,})\s+(?:VOL(?:UME)?\.?\s*)?(\d+)\b/.exec(upper);
  return named ? `${named[1]}-${named[2]}` : undefined;
}

function skusIn(text: string): string[] {
  return [...text.matchAll(/"(?:sku|orderItemId|asin)\\?"\s*:\s*\\?"([A-Z0-9-]+)\\?"/gi)].map((m) => m[1] as string);
}

/** "is volume 5 in stock?" → "volume 5": the words naming the product, for a tool that searches by them. */
function productWords(question: string): string | undefined {
  const words = question
    .toLowerCase()
    .replace(/[?!.,]/g, ' ')
    .replace(
      /\b(is|are|the|a|an|in|on|stock|available|availability|do|does|you|have|any|left|of|there|still|please|check|whether|if|eu|us|uk)\b/g,
      ' ',
    )
    .replace(/\s+/g, ' ')
    .trim();
  return words || undefined;
}

/** The last value given for `key` in the conversation: a JSON field, escaped or not, or `key: value`. */
function latestValue(text: string, key: string): string | undefined {
  const pattern = new RegExp(`\\b${key.replace(/\W/g, '')}\\\\?"?\\s*[:=]\\s*\\\\?"?([\\w.:-]+)`, 'g');
  return [...text.matchAll(pattern)].at(-1)?.[1];
}

/** A proposal shown in prose ("Return proposal P-1A2B3C for order …"), the last one. */
function latestProposal(text: string): string | undefined {
  return [...text.matchAll(/\bproposal\W+([A-Z0-9][\w-]*\d[\w-]*)/gi)].at(-1)?.[1];
}
