import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { demoAddress } from '../../scripts/seed.ts';
import { epochNow, sleep } from '../support.ts';

// The buyers: each posts one order for one unit of the SKU, over keep-alive HTTP, through at most
// `clients` connections at once, as fast as they answer. A buyer told 429 (checkout busy) comes back
// after Retry-After with the same Idempotency-Key, up to `retries` times; meanwhile its connection
// serves the next buyer.

export type Buyer = { customerId: string; apiKey: string };

/** The answer classes the results count by. */
export const answerKinds = ['accepted', 'sold_out', 'busy', 'other'] as const;
export type AnswerKind = (typeof answerKinds)[number];

export type DoorAnswer = {
  buyer: number;
  attempt: number;
  /** Epoch milliseconds, comparable with PostgreSQL's timestamps. */
  sentAt: number;
  answeredAt: number;
  status: number;
  /** The error code of a refusal (`sold_out`, `checkout_busy`…), `accepted` for 201, `network` without answer. */
  code: string;
  kind: AnswerKind;
  retryAfterS?: number;
  orderId?: string;
};

export type RaceLoad = {
  apiUrl: string;
  region: string;
  sku: string;
  buyers: number;
  customers: readonly Buyer[];
  clients: number;
  retries: number;
};

export type RaceRecord = {
  answers: DoorAnswer[];
  /** Each buyer's last answer: what the buyer went home with. */
  outcomes: DoorAnswer[];
  startedAt: number;
  finishedAt: number;
  /** CPU time of this process during the race: the load generator shares the machine. */
  clientCpuMs: number;
};

const RETRY_AFTER_DEFAULT_S = 1;

export function kindOf(status: number, code: string): AnswerKind {
  if (status === 201) return 'accepted';
  if (status === 409 && code === 'sold_out') return 'sold_out';
  if (status === 429) return 'busy';
  return 'other';
}

/** Runs the race; `onOutcome(done)` after each buyer's final answer. */
export async function runRace(
  load: RaceLoad,
  signal: AbortSignal,
  onOutcome: (done: number) => void,
): Promise<RaceRecord> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: load.clients });
  const keys = Array.from({ length: load.buyers }, () => randomUUID());
  const answers: DoorAnswer[] = [];
  const outcomes: DoorAnswer[] = new Array(load.buyers);
  const due: Array<{ buyer: number; attempt: number }> = [];
  const sleeping = new Set<NodeJS.Timeout>();
  let next = 0;
  let done = 0;

  const take = () => due.shift() ?? (next < load.buyers ? { buyer: next++, attempt: 1 } : undefined);
  const lane = async () => {
    for (;;) {
      signal.throwIfAborted();
      const turn = take();
      if (!turn) {
        if (sleeping.size === 0) return;
        await sleep(2);
        continue;
      }
      const answer = await postOrder(agent, load, turn.buyer, turn.attempt, keys[turn.buyer]!);
      answers.push(answer);
      if (answer.kind === 'busy' && turn.attempt <= load.retries) {
        const timer = setTimeout(
          () => {
            sleeping.delete(timer);
            due.push({ buyer: turn.buyer, attempt: turn.attempt + 1 });
          },
          (answer.retryAfterS ?? RETRY_AFTER_DEFAULT_S) * 1000,
        );
        sleeping.add(timer);
        continue;
      }
      outcomes[turn.buyer] = answer;
      onOutcome(++done);
    }
  };

  const startedAt = epochNow();
  const cpuBefore = process.cpuUsage();
  try {
    await Promise.all(Array.from({ length: Math.min(load.clients, load.buyers) }, lane));
  } finally {
    for (const timer of sleeping) clearTimeout(timer);
    agent.destroy();
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { answers, outcomes, startedAt, finishedAt: epochNow(), clientCpuMs: (cpu.user + cpu.system) / 1000 };
}

function postOrder(
  agent: http.Agent,
  load: RaceLoad,
  buyer: number,
  attempt: number,
  idempotencyKey: string,
): Promise<DoorAnswer> {
  const customer = load.customers[buyer % load.customers.length]!;
  const body = JSON.stringify({
    region: load.region,
    items: [{ sku: load.sku, quantity: 1 }],
    shippingAddress: demoAddress,
    payment: { token: '4242424242424242' },
  });
  const sentAt = epochNow();
  return new Promise((resolve) => {
    const answer = (status: number, text: string, retryAfter: string | undefined): DoorAnswer => {
      const parsed = parseJson(text);
      const code = status === 201 ? 'accepted' : (errorCode(parsed) ?? `http_${status}`);
      const orderId = status === 201 ? (parsed as { id?: string } | undefined)?.id : undefined;
      const retryAfterS = retryAfter === undefined ? undefined : parseRetryAfter(retryAfter);
      const kind = kindOf(status, code);
      return { buyer, attempt, sentAt, answeredAt: epochNow(), status, code, kind, retryAfterS, orderId };
    };
    const request = http.request(
      `${load.apiUrl}/orders`,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${customer.apiKey}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'idempotency-key': idempotencyKey,
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const retryAfter = response.headers['retry-after'];
          resolve(answer(response.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), retryAfter));
        });
        response.on('error', (error) => resolve(networkFailure(buyer, attempt, sentAt, error)));
      },
    );
    request.on('error', (error) => resolve(networkFailure(buyer, attempt, sentAt, error)));
    request.end(body);
  });
}

/** No answer at all (a reset, a refused connection) is an answer of its own kind: the door was not there. */
function networkFailure(buyer: number, attempt: number, sentAt: number, error: Error): DoorAnswer {
  const code = `network_${(error as NodeJS.ErrnoException).code ?? 'error'}`;
  return { buyer, attempt, sentAt, answeredAt: epochNow(), status: 0, code, kind: 'other' };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorCode(body: unknown): string | undefined {
  const code = (body as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Seconds, or an HTTP date (RFC 9110); anything else falls back to one second. */
export function parseRetryAfter(value: string): number {
  const seconds = Number(value);
  if (value.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return seconds;
  const date = Date.parse(value);
  return Number.isNaN(date) ? RETRY_AFTER_DEFAULT_S : Math.max(0, (date - Date.now()) / 1000);
}
