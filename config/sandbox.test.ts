import { describe, expect, it } from 'vitest';
import { ConfigError } from './index.ts';
import { loadSandboxConfig } from './sandbox.ts';

describe('loadSandboxConfig', () => {
  it('gives the defaults with an empty environment, needing no database or Redis', () => {
    expect(loadSandboxConfig({})).toEqual({
      host: '127.0.0.1',
      gatewayPort: 4001,
      carrierPort: 4002,
      bedrockPort: 4003,
      latencyMs: 0,
      declineRate: 0,
      failureRate: 0,
      deliveryStageMs: 0,
      exceptionRate: 0,
      seed: undefined,
    });
  });

  it('reads every setting from its string', () => {
    expect(
      loadSandboxConfig({
        SANDBOX_HOST: '0.0.0.0',
        SANDBOX_GATEWAY_PORT: '5001',
        SANDBOX_CARRIER_PORT: '5002',
        SANDBOX_BEDROCK_PORT: '5003',
        SANDBOX_LATENCY_MS: '25',
        SANDBOX_DECLINE_RATE: '0.2',
        SANDBOX_FAILURE_RATE: '1',
        SANDBOX_DELIVERY_STAGE_MS: '3000',
        SANDBOX_EXCEPTION_RATE: '0.05',
        SANDBOX_SEED: '42',
      }),
    ).toEqual({
      host: '0.0.0.0',
      gatewayPort: 5001,
      carrierPort: 5002,
      bedrockPort: 5003,
      latencyMs: 25,
      declineRate: 0.2,
      failureRate: 1,
      deliveryStageMs: 3_000,
      exceptionRate: 0.05,
      seed: 42,
    });
  });

  it('treats empty strings as unset', () => {
    expect(loadSandboxConfig({ SANDBOX_DECLINE_RATE: '', SANDBOX_SEED: '' })).toMatchObject({
      declineRate: 0,
      seed: undefined,
    });
  });

  it.each([
    ['SANDBOX_DECLINE_RATE', '2'],
    ['SANDBOX_DECLINE_RATE', '-0.1'],
    ['SANDBOX_FAILURE_RATE', '1.5'],
    ['SANDBOX_LATENCY_MS', '-5'],
    ['SANDBOX_EXCEPTION_RATE', '1.5'],
    ['SANDBOX_GATEWAY_PORT', '65536'],
    ['SANDBOX_BEDROCK_PORT', '-1'],
    ['SANDBOX_SEED', 'abc'],
  ])('refuses %s=%j in a ConfigError that names it', (name, value) => {
    let error: unknown;
    try {
      loadSandboxConfig({ [name]: value });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      expect.stringMatching(new RegExp(`^${name}: .*\\(got "${value}"\\)$`)),
    ]);
  });
});
