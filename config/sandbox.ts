import { z } from 'zod';
import { parseEnv } from './index.ts';

// Settings of the fake payment gateway, carrier and Bedrock (sandbox/server.ts). Kept apart from the main
// config so the sandbox starts without a database or Redis URL.

const port = z.coerce.number().int().min(0).max(65_535);
const rate = z.coerce.number().min(0).max(1);

const schema = z.object({
  SANDBOX_HOST: z.string().default('127.0.0.1'),
  SANDBOX_GATEWAY_PORT: port.default(4001),
  SANDBOX_CARRIER_PORT: port.default(4002),
  SANDBOX_BEDROCK_PORT: port.default(4003),
  SANDBOX_LATENCY_MS: z.coerce.number().int().min(0).default(0),
  SANDBOX_DECLINE_RATE: rate.default(0),
  SANDBOX_FAILURE_RATE: rate.default(0),
  SANDBOX_DELIVERY_STAGE_MS: z.coerce.number().int().min(0).default(0),
  SANDBOX_EXCEPTION_RATE: rate.default(0),
  SANDBOX_SEED: z.coerce.number().int().optional(),
});

export type SandboxConfig = {
  host: string;
  gatewayPort: number;
  carrierPort: number;
  /** The fake Bedrock runtime (Converse API) the assistant is pointed at with BEDROCK_ENDPOINT. */
  bedrockPort: number;
  latencyMs: number;
  declineRate: number;
  failureRate: number;
  /** The carrier moves each shipment one tracking stage on every this many ms; 0 = only when advanced. */
  deliveryStageMs: number;
  /** Chance that a shipment has a failed delivery attempt (an `exception` event) before it is delivered. */
  exceptionRate: number;
  seed: number | undefined;
};

export function loadSandboxConfig(env: Record<string, string | undefined> = process.env): SandboxConfig {
  const e = parseEnv(schema, env);
  return {
    host: e.SANDBOX_HOST,
    gatewayPort: e.SANDBOX_GATEWAY_PORT,
    carrierPort: e.SANDBOX_CARRIER_PORT,
    bedrockPort: e.SANDBOX_BEDROCK_PORT,
    latencyMs: e.SANDBOX_LATENCY_MS,
    declineRate: e.SANDBOX_DECLINE_RATE,
    failureRate: e.SANDBOX_FAILURE_RATE,
    deliveryStageMs: e.SANDBOX_DELIVERY_STAGE_MS,
    exceptionRate: e.SANDBOX_EXCEPTION_RATE,
    seed: e.SANDBOX_SEED,
  };
}
