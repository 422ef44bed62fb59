import { createRoute, z } from '@hono/zod-openapi';
import type { Assistant } from '../chat/assistant.ts';
import { sessionIdPattern } from '../chat/sessions.ts';
import { AppError } from '../domain/errors.ts';
import type { AuthEnv } from './auth.ts';
import { text } from './input.ts';
import { apiKey, apiRoutes, errorAnswers, jsonAnswer, jsonRequest, openapiRoute } from './openapi.ts';

// POST /chat (SPEC §6): the support assistant, for the customer whose key calls. An admin key is 403:
// the assistant acts for one customer and has no one to act for.

const chatRequestSchema = z
  .strictObject({
    sessionId: z
      .string()
      .regex(sessionIdPattern, 'must be a sessionId from an earlier answer')
      .optional()
      .openapi({ description: 'Continue a conversation: the `sessionId` of its last answer. Omit to start one.' }),
    message: text(2000, { multiline: true }).openapi({ example: 'Where is my package?' }),
  })
  .openapi('ChatRequest');

const proposalSchema = z
  .object({
    proposalId: z.string(),
    orderId: z.string(),
    items: z.array(z.object({ sku: z.string(), name: z.string(), quantity: z.int(), refundCents: z.int() })),
    refundCents: z.int(),
    currency: z.string(),
    expiresAt: z.string(),
  })
  .openapi('ReturnProposal');

const chatAnswerSchema = z
  .object({
    sessionId: z.string(),
    reply: z.string(),
    responder: z.enum(['bedrock', 'template']).openapi({
      description: '`template` without Bedrock, or when Bedrock failed, was slow or asked for something not allowed',
    }),
    toolCalls: z.array(z.object({ name: z.string(), ok: z.boolean() })),
    proposal: proposalSchema.optional().openapi({
      description: 'The open return proposal: nothing is returned until the customer answers "yes" in a later message',
    }),
  })
  .openapi('ChatAnswer');

const chatRoute = createRoute({
  method: 'post',
  path: '/chat',
  tags: ['Assistant'],
  operationId: 'chat',
  summary: 'Talk to the support assistant',
  description:
    'One message, one answer. The assistant looks up the caller’s own orders, recent orders, stock and return eligibility, and proposes returns: a return is created only when a later message confirms the proposal (`yes`). Answered by Amazon Bedrock when configured, else (or when Bedrock fails) by templates, in the same shape. A customer key only; another customer’s `sessionId` is 404.',
  security: apiKey,
  request: { body: jsonRequest(chatRequestSchema, { required: true }) },
  responses: {
    200: jsonAnswer(chatAnswerSchema, 'The assistant’s answer'),
    ...errorAnswers(400, 401, 403, 404, 413, 415, 429, 503),
  },
});

export function chatRoutes(deps: { assistant: Assistant }) {
  const app = apiRoutes<AuthEnv>();

  openapiRoute(app, chatRoute, async (c) => {
    const caller = c.get('caller');
    if (caller.role !== 'customer' || caller.customerId === null) {
      throw new AppError('forbidden', 'The assistant acts for a customer: use a customer API key');
    }
    const { sessionId, message } = c.req.valid('json');
    const answer = await deps.assistant.turn({ ...caller, customerId: caller.customerId }, { sessionId, message });
    return c.json(answer, 200);
  });

  return app;
}
