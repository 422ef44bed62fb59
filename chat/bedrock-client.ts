import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { ChatSettings } from '../config/index.ts';

/**
 * The support assistant's Bedrock client, or null without a model. Credentials come from the SDK's
 * standard chain (environment, profile, role). With an endpoint override (the sandbox's fake Bedrock)
 * it speaks HTTP/1.1: the SDK's default handler for this client is HTTP/2, which the stand-in does not.
 */
export function createBedrockClient(settings: ChatSettings): BedrockRuntimeClient | null {
  if (!settings.bedrock) return null;
  const { region, endpoint } = settings.bedrock;
  return new BedrockRuntimeClient({
    region,
    // The turn has its own budget and a template to fall back on: a retry would only spend the budget.
    maxAttempts: 1,
    ...(endpoint ? { endpoint, requestHandler: new NodeHttpHandler() } : {}),
  });
}
