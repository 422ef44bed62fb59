import { Counter, Histogram, type Registry } from 'prom-client';

// The support assistant's metrics (SPEC §6), on the API's registry. Labels are closed sets: the
// responder, the fallback causes of chat/assistant.ts, the five tool names and ok/error.

export type ChatResponder = 'bedrock' | 'template';
export type FallbackCause =
  | 'throttled'
  | 'access_denied'
  | 'unavailable'
  | 'service_error'
  | 'timeout'
  | 'bad_response'
  | 'unknown_tool'
  | 'malformed_tool_input'
  | 'tool_limit'
  | 'no_reply';

export type ChatMetrics = ReturnType<typeof buildChatMetrics>;

const shared = new WeakMap<Registry, ChatMetrics>();

/** One set per registry: a second app on the same registry (tests build one beside the harness's) shares it. */
export function createChatMetrics(registry: Registry): ChatMetrics {
  let metrics = shared.get(registry);
  if (!metrics) {
    metrics = buildChatMetrics(registry);
    shared.set(registry, metrics);
  }
  return metrics;
}

function buildChatMetrics(registry: Registry) {
  const turns = new Counter({
    name: 'orderflow_chat_turns_total',
    help: 'Support assistant turns answered, by responder (bedrock, template)',
    labelNames: ['responder'] as const,
    registers: [registry],
  });
  const fallbacks = new Counter({
    name: 'orderflow_chat_fallbacks_total',
    help: 'Turns Bedrock started but the template responder answered, by cause',
    labelNames: ['cause'] as const,
    registers: [registry],
  });
  const toolCalls = new Counter({
    name: 'orderflow_chat_tool_calls_total',
    help: 'Assistant tool calls, by tool and result (ok, error: refused, not found or failed)',
    labelNames: ['tool', 'result'] as const,
    registers: [registry],
  });
  const turnDuration = new Histogram({
    name: 'orderflow_chat_turn_duration_seconds',
    help: 'One POST /chat turn, model calls and tools included, by the responder that answered',
    labelNames: ['responder'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13],
    registers: [registry],
  });
  return {
    turnAnswered: (responder: ChatResponder, seconds: number) => {
      turns.inc({ responder });
      turnDuration.observe({ responder }, seconds);
    },
    fellBack: (cause: FallbackCause) => fallbacks.inc({ cause }),
    toolCalled: (tool: string, ok: boolean) => toolCalls.inc({ tool, result: ok ? 'ok' : 'error' }),
  };
}
