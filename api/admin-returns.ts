import { createRoute, z } from '@hono/zod-openapi';
import { listReturns, returnStatuses, returnView } from '../sql/returns.ts';
import type { AuthEnv } from './auth.ts';
import { apiKey, apiRoutes, errorAnswers, jsonAnswer, jsonRequest, openapiRoute } from './openapi.ts';
import { type ReturnDeps, receiveReturn } from './request-return.ts';
import { receiveSchema, returnListSchema, returnSchema } from './return-view.ts';
import { rmaParam } from './returns.ts';

// Operators' side of returns: what arrived at the warehouse, and the list of returns by status. Admin
// keys only (api/app.ts guards /admin/*).

const listQuery = z.strictObject({
  status: z.enum(returnStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z
    .string()
    .regex(/^\d{1,18}$/, 'must be the `next` value of the previous page')
    .optional(),
});

const listRoute = createRoute({
  method: 'get',
  path: '/',
  tags: ['Admin'],
  operationId: 'listReturns',
  summary: 'List returns',
  description: 'Newest first, optionally of one status (e.g. `?status=awaiting_receipt` for the parcels expected).',
  security: apiKey,
  request: { query: listQuery },
  responses: {
    200: jsonAnswer(returnListSchema.extend({ next: z.string().nullable() }), 'A page of returns'),
    ...errorAnswers(400, 401, 403, 429, 503),
  },
});

const receiveRoute = createRoute({
  method: 'post',
  path: '/{rma}/receive',
  tags: ['Admin'],
  operationId: 'receiveReturn',
  summary: 'Record what a return’s parcel held',
  description:
    'Per item (`orderItemId`, its SKU): the units this line covers and their disposition. `restock` units are refunded and put back on sale, `damaged` ones refunded only, `missing` ones neither; an item not listed arrived not at all. Only a return awaiting receipt (or still requested) is received; a second receipt is 409. The refund and the restock then run as saga steps.',
  security: apiKey,
  request: { params: z.object({ rma: rmaParam }), body: jsonRequest(receiveSchema, { required: true }) },
  responses: {
    200: jsonAnswer(returnSchema, 'The return, received'),
    ...errorAnswers(400, 401, 403, 404, 409, 413, 415, 429, 503),
  },
});

export function adminReturnRoutes(deps: ReturnDeps) {
  const app = apiRoutes<AuthEnv>();

  openapiRoute(app, listRoute, async (c) => {
    const { status, limit, before } = c.req.valid('query');
    const page = await listReturns(deps.db, {
      status,
      limit,
      before: before === undefined ? undefined : Number(before),
    });
    const last = page.at(-1);
    return c.json({ returns: page.map(returnView), next: page.length === limit && last ? String(last.id) : null }, 200);
  });

  openapiRoute(app, receiveRoute, async (c) => {
    const record = await receiveReturn(deps, c.req.valid('param').rma, c.req.valid('json').items);
    return c.json(returnView(record), 200);
  });

  return app;
}
