import { orderBody } from '../support/harness.ts';
import {
  badAuthHeaders,
  badContentTypes,
  badDates,
  badInstants,
  badQueryValues,
  badSegments,
  brokenBodies,
  goodContentTypes,
  invalidStrings,
  numbersOutOfRange,
  oddStrings,
  type Random,
  wrongTypes,
} from './values.ts';

// The hostile requests, over every route of the README. A request to a route that writes is built from
// a valid one plus at least one change that makes it invalid (applied last, so nothing undoes it): it
// must fail and change nothing. Reads get any mix of changes; they must only never answer 5xx.

export type Fixtures = {
  keys: { admin: string; customer: string; otherCustomer: string };
  customerId: string;
  otherCustomerId: string;
  /** The customer's order, PENDING (no workers run). */
  orderId: string;
  otherOrderId: string;
  saleId: number;
  deadLetterId: number;
};

export type FuzzRequest = {
  route: string;
  method: string;
  /** As sent on the wire: percent-encoded where it must be. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** A 2xx would be a write nobody meant: the request must fail. */
  mustFail: boolean;
};

type Path = Array<string | number>;

/** Well-formed ids that name nothing (constants, so that a seed replays exactly). */
const NO_SUCH_ORDER = '5e1f7a3c-0b9d-4c2e-8f6a-1d2c3b4a5e6f';
const A_MOMENT = Date.UTC(2026, 0, 1);
type Field = { path: Path; invalid: readonly unknown[]; required: boolean };
type Json = Record<string, unknown>;

const text = (max: number, options: { emptyOk?: boolean; extra?: unknown[] } = {}): readonly unknown[] => [
  ...invalidStrings,
  ...wrongTypes,
  'x'.repeat(max + 1),
  ...(options.emptyOk ? [] : ['', '   ', '\n\t ']),
  ...(options.extra ?? []),
];
const int = (min: number, max: number) => numbersOutOfRange(min, max);
const massAssignment = ['price', 'unitPrice', 'total', 'totalCents', 'status', 'id', 'createdAt', '__proto__'];

type WriteRoute = {
  route: string;
  auth: 'customer' | 'admin';
  path: (f: Fixtures) => string;
  /** Segments that make the path invalid or name nothing we have (a 4xx either way). */
  badPaths: (f: Fixtures) => string[];
  template: (f: Fixtures) => Json;
  fields: Field[];
  /** Top-level keys that the route refuses (mass assignment, unknown fields). */
  refusedKeys: string[];
  optionalBody?: boolean;
  /** Another customer's key makes the request fail (404) rather than act for that customer. */
  otherCustomerFails?: boolean;
  /** A customer's key on this admin route would act for that customer rather than fail (403). */
  customerKeyWorks?: boolean;
};

const address = (key: string, max: number, extra: { emptyOk?: boolean } = {}): Field => ({
  path: ['shippingAddress', key],
  invalid: text(max, extra),
  required: !extra.emptyOk,
});

const writeRoutes: WriteRoute[] = [
  {
    route: 'POST /orders',
    auth: 'customer',
    path: () => '/orders',
    badPaths: () => [],
    template: () => orderBody(),
    fields: [
      { path: ['region'], invalid: text(32, { extra: ['mars'] }), required: true },
      {
        path: ['items'],
        invalid: [[], Array.from({ length: 51 }, (_, i) => ({ sku: `S-${i}`, quantity: 1 })), ...wrongTypes.slice(1)],
        required: true,
      },
      { path: ['items', 0, 'sku'], invalid: text(64, { extra: ['NOPE-1', 'berserk-42'] }), required: true },
      { path: ['items', 0, 'quantity'], invalid: int(1, 100), required: true },
      address('name', 200),
      address('line1', 200),
      address('line2', 200, { emptyOk: true }),
      address('city', 100),
      address('postalCode', 20),
      { path: ['shippingAddress', 'country'], invalid: ['gb', 'GBR', 'G', '', 'G\u0000', 12, null], required: true },
      { path: ['payment', 'token'], invalid: text(200), required: true },
      { path: ['customerId'], invalid: ['cust_grace', 'cust_nobody', ...text(64)], required: false },
    ],
    refusedKeys: [...massAssignment, 'customer', 'paymentStatus'],
  },
  {
    route: 'POST /orders (admin key)',
    auth: 'admin',
    path: () => '/orders',
    badPaths: () => [],
    template: (f) => ({
      customerId: f.customerId,
      region: 'us',
      items: [{ sku: 'ONEPIECE-105', quantity: 2 }],
      shippingAddress: {
        name: 'Grace Hopper',
        line1: '1 Navy Way',
        city: 'Arlington',
        postalCode: '22202',
        country: 'US',
      },
      payment: { token: '4242424242424242' },
    }),
    fields: [{ path: ['customerId'], invalid: ['cust_nobody', 'CUST_ADA', ...text(64)], required: true }],
    refusedKeys: massAssignment,
    customerKeyWorks: true,
  },
  {
    route: 'POST /orders/{id}/cancel',
    auth: 'customer',
    path: (f) => `/orders/${f.orderId}/cancel`,
    // Not the other customer's order: with that customer's key (another change) it would be valid.
    badPaths: () => [...badSegments.map((s) => `/orders/${s}/cancel`), `/orders/${NO_SUCH_ORDER}/cancel`],
    template: () => ({ reason: 'changed my mind' }),
    fields: [
      { path: ['reason'], invalid: [...invalidStrings, ...wrongTypes, 'x'.repeat(501), '', '  '], required: false },
    ],
    refusedKeys: [...massAssignment, 'refund', 'force'],
    optionalBody: true,
    otherCustomerFails: true,
  },
  {
    // The fixture order is PENDING: a valid quote is a 200 that refuses every item and stores nothing.
    route: 'POST /orders/{id}/returns/quote',
    auth: 'customer',
    path: (f) => `/orders/${f.orderId}/returns/quote`,
    badPaths: () => [...badSegments.map((s) => `/orders/${s}/returns/quote`), `/orders/${NO_SUCH_ORDER}/returns/quote`],
    template: () => ({ items: [{ orderItemId: 'BERSERK-42', quantity: 1 }], reason: 'It does not fit my shelf' }),
    fields: [
      {
        path: ['items'],
        invalid: [
          [],
          Array.from({ length: 101 }, (_, i) => ({ orderItemId: `S-${i}`, quantity: 1 })),
          ...wrongTypes.slice(1),
        ],
        required: true,
      },
      // An item the order does not have is a verdict (unknown_item), not a bad request: only malformed ids here.
      { path: ['items', 0, 'orderItemId'], invalid: text(64), required: true },
      { path: ['items', 0, 'quantity'], invalid: int(1, 10_000), required: true },
      { path: ['reason'], invalid: [...invalidStrings, ...wrongTypes, 'x'.repeat(501), '', '  '], required: true },
    ],
    refusedKeys: [...massAssignment, 'refundCents', 'token', 'eligible'],
    otherCustomerFails: true,
  },
  {
    // No quote was made for the fixtures: any token names nothing (404), whatever the body.
    route: 'POST /orders/{id}/returns',
    auth: 'customer',
    path: (f) => `/orders/${f.orderId}/returns`,
    badPaths: () => [...badSegments.map((s) => `/orders/${s}/returns`), `/orders/${NO_SUCH_ORDER}/returns`],
    template: () => ({ token: 'rt_no-such-token' }),
    fields: [{ path: ['token'], invalid: [...wrongTypes, '', 'x'.repeat(201)], required: true }],
    refusedKeys: [...massAssignment, 'items', 'rma', 'refundCents'],
    otherCustomerFails: true,
  },
  {
    // The fuzz's app has no Bedrock model: the template responder answers a valid message (no row written).
    route: 'POST /chat',
    auth: 'customer',
    path: () => '/chat',
    badPaths: () => [],
    template: () => ({ message: 'Where is my order?' }),
    fields: [
      {
        path: ['message'],
        // A message may be 2,000 characters long: the 1,001-character string of the shared list is valid here.
        invalid: [
          ...invalidStrings.filter((s) => s.length > 2_000 || s.length <= 1_000),
          ...wrongTypes,
          'x'.repeat(2001),
          '',
          '  ',
        ],
        required: true,
      },
      { path: ['sessionId'], invalid: ['chs_nope', 'x'.repeat(300), ...wrongTypes], required: false },
    ],
    refusedKeys: [...massAssignment, 'customerId', 'responder', 'proposal'],
  },
  {
    route: 'POST /returns/{rma}/cancel',
    auth: 'customer',
    path: () => '/returns/RMA-0A1B2C3D4E5F/cancel',
    badPaths: () => [...badSegments, 'rma-0a1b2c3d4e5f', 'RMA-0A1B2C3D4E5'].map((s) => `/returns/${s}/cancel`),
    template: () => ({}),
    fields: [],
    refusedKeys: [...massAssignment, 'refund', 'force'],
    optionalBody: true,
  },
  {
    route: 'POST /admin/returns/{rma}/receive',
    auth: 'admin',
    path: () => '/admin/returns/RMA-0A1B2C3D4E5F/receive',
    badPaths: () => [...badSegments, 'rma-0a1b2c3d4e5f', 'RMA-0A1B2C3D4E5'].map((s) => `/admin/returns/${s}/receive`),
    template: () => ({ items: [{ orderItemId: 'BERSERK-42', quantity: 1, disposition: 'restock' }] }),
    fields: [
      { path: ['items'], invalid: [[], ...wrongTypes.slice(1)], required: true },
      { path: ['items', 0, 'orderItemId'], invalid: text(64), required: true },
      { path: ['items', 0, 'quantity'], invalid: int(0, 10_000), required: true },
      { path: ['items', 0, 'disposition'], invalid: ['RESTOCK', 'lost', '', ...wrongTypes], required: true },
    ],
    refusedKeys: [...massAssignment, 'refundCents'],
  },
  {
    route: 'POST /admin/inventory/{sku}/restock',
    auth: 'admin',
    path: () => '/admin/inventory/BERSERK-42/restock',
    badPaths: () => [...badSegments, 'NOPE-1', 'berserk-42'].map((s) => `/admin/inventory/${s}/restock`),
    template: () => ({ region: 'eu', quantity: 5, nextRestockDate: '2027-01-01' }),
    fields: [
      { path: ['region'], invalid: text(32, { extra: ['mars', 'EU'] }), required: true },
      { path: ['quantity'], invalid: int(1, 1_000_000), required: true },
      { path: ['nextRestockDate'], invalid: badDates, required: false },
    ],
    refusedKeys: [...massAssignment, 'available', 'onHand', 'sku'],
  },
  {
    route: 'POST /admin/inventory/{sku}/adjust',
    auth: 'admin',
    path: () => '/admin/inventory/CHAINSAW-05/adjust',
    badPaths: () => [...badSegments, 'NOPE-1'].map((s) => `/admin/inventory/${s}/adjust`),
    template: () => ({ region: 'us', available: 7 }),
    fields: [
      { path: ['region'], invalid: text(32, { extra: ['mars'] }), required: true },
      { path: ['available'], invalid: int(0, 1_000_000), required: true },
    ],
    refusedKeys: [...massAssignment, 'reserved', 'onHand', 'quantity'],
  },
  {
    route: 'POST /admin/flash-sales',
    auth: 'admin',
    path: () => '/admin/flash-sales',
    badPaths: () => [],
    template: () => ({
      name: 'Golden week',
      region: 'eu',
      skus: ['BERSERK-41'],
      startsAt: new Date(Date.now() + 3_600_000).toISOString(),
      endsAt: new Date(Date.now() + 7_200_000).toISOString(),
      purchaseLimit: 2,
    }),
    fields: [
      { path: ['name'], invalid: text(200), required: true },
      { path: ['region'], invalid: text(32, { extra: ['mars'] }), required: true },
      { path: ['skus'], invalid: [[], Array(101).fill('BERSERK-41'), ['NOPE-1'], 'BERSERK-41', null], required: true },
      { path: ['skus', 0], invalid: text(64, { extra: ['NOPE-1'] }), required: true },
      {
        path: ['startsAt'],
        invalid: [...badInstants, new Date(Date.now() + 86_400_000).toISOString()],
        required: true,
      },
      { path: ['endsAt'], invalid: [...badInstants, '2001-01-01T00:00:00Z'], required: true },
      { path: ['purchaseLimit'], invalid: int(1, 1000), required: false },
    ],
    refusedKeys: [...massAssignment, 'endedAt', 'hot'],
  },
  ...(['end', 'replay', 'discard'] as const).map(
    (action): WriteRoute => ({
      route: action === 'end' ? 'POST /admin/flash-sales/{id}/end' : `POST /admin/dead-letters/{id}/${action}`,
      auth: 'admin',
      path: (f) =>
        action === 'end' ? `/admin/flash-sales/${f.saleId}/end` : `/admin/dead-letters/${f.deadLetterId}/${action}`,
      badPaths: () =>
        [...badSegments, '999999999'].map((s) =>
          action === 'end' ? `/admin/flash-sales/${s}/end` : `/admin/dead-letters/${s}/${action}`,
        ),
      template: () => ({}),
      fields: [],
      refusedKeys: [...massAssignment, 'force', 'generation', 'note'],
      optionalBody: true,
    }),
  ),
];

/** One write request: valid, then 0 to 2 harmless oddities, then 1 to 3 changes that make it invalid. */
function writeRequest(r: Random, f: Fixtures, route: WriteRoute): FuzzRequest {
  let body: unknown = route.template(f);
  let bodyText: string | null = null;
  let contentType: string | null = 'application/json';
  let path = route.path(f);
  const headers: Record<string, string> = { authorization: `Bearer ${f.keys[route.auth]}` };

  for (let i = r.int(0, 2); i > 0; i--) {
    const odd = r.int(0, 3);
    if (odd === 0 && route.fields.length > 0) {
      const field = r.pick(route.fields);
      if (typeof getAt(body, field.path) === 'string') body = setAt(body, field.path, r.pick(oddStrings));
    } else if (odd === 1) contentType = r.pick(goodContentTypes);
    else if (odd === 2)
      headers[r.pick(['origin', 'cookie', 'x-forwarded-for', 'accept'])] = r.pick([
        'https://evil.example',
        'a=b; c',
        '1.1.1.1, ::1',
        '*/*;q=0',
      ]);
    else if (route.route === 'POST /orders') headers['idempotency-key'] = `fuzz-${r.int(1, 1e9)}`;
  }

  const breakers = [
    'field',
    'remove',
    'refusedKey',
    'contentType',
    'brokenBody',
    'huge',
    'auth',
    'path',
    'idempotencyKey',
  ];
  const applied: string[] = [];
  for (let i = r.int(1, 3); i > 0; i--) {
    let kind = r.pick(breakers);
    const required = route.fields.filter((x) => x.required);
    const badPaths = route.badPaths(f);
    if (kind === 'field' && route.fields.length > 0) {
      const field = r.pick(route.fields);
      body = setAt(body, field.path, r.pick(field.invalid));
    } else if (kind === 'remove' && required.length > 0) {
      body = removeAt(body, r.pick(required).path);
    } else if (kind === 'refusedKey') {
      const key = r.pick(route.refusedKeys);
      const value = r.pick([1, 0, 'PAID', 'COMPLETED', null, true]);
      if (key === '__proto__') bodyText = JSON.stringify(body).replace(/^\{/, `{"__proto__":${JSON.stringify(value)},`);
      else body = { ...(body as Json), [key]: value };
    } else if (kind === 'brokenBody') {
      bodyText = r.pick([...brokenBodies, ...(route.optionalBody ? [] : [''])]);
      if (bodyText === '' && r.chance(0.5)) contentType = null;
    } else if (kind === 'huge') {
      // Past the body limit (413), or under it with an array far too long or an unknown field (400).
      const size = r.pick([1_500, 3_000, 20_000]);
      body =
        route.route === 'POST /orders' && r.chance(0.5)
          ? setAt(
              body,
              ['items'],
              Array.from({ length: size }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1 })),
            )
          : { ...(body as Json), padding: 'x'.repeat(size * 20) };
    } else if (kind === 'auth') {
      const options = badAuthHeaders(f.keys);
      if (route.auth === 'admin' && !route.customerKeyWorks)
        options.push({ authorization: `Bearer ${f.keys.customer}` });
      if (route.otherCustomerFails) options.push({ 'x-api-key': f.keys.otherCustomer });
      delete headers.authorization;
      Object.assign(headers, r.pick(options));
    } else if (kind === 'path' && badPaths.length > 0) {
      path = r.pick(badPaths);
    } else if (kind === 'idempotencyKey' && route.route === 'POST /orders') {
      headers['idempotency-key'] = r.pick(['', ' ', 'a b', 'x'.repeat(256), 'clé', 'tab\there', '\u00ff\u0080']);
    } else {
      // Not applicable to this route (or drawn as such): a body that is not JSON, which always fails.
      kind = 'contentType';
      contentType = r.pick(badContentTypes);
      bodyText ??= JSON.stringify(body);
      if (bodyText === '{}' || bodyText === '') bodyText = '{}';
    }
    applied.push(kind);
  }
  bodyText ??= JSON.stringify(body);
  if (route.optionalBody && bodyText === '{}' && !applied.includes('contentType') && r.chance(0.5)) bodyText = '';
  if (contentType !== null) headers['content-type'] = contentType;
  return { route: route.route, method: 'POST', path, headers, body: Buffer.from(bodyText, 'utf8'), mustFail: true };
}

type ReadRoute = {
  route: string;
  auth: 'customer' | 'admin' | null;
  path: (f: Fixtures) => string[];
  query: Array<[string, string[]]>;
};

const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const readRoutes: ReadRoute[] = [
  {
    route: 'GET /orders/{id}',
    auth: 'customer',
    path: (f) =>
      [f.orderId, f.otherOrderId, f.orderId.toUpperCase(), NO_SUCH_ORDER, ...badSegments].map((s) => `/orders/${s}`),
    query: [['x', ['1']]],
  },
  {
    route: 'GET /customers/{id}/orders',
    auth: 'customer',
    path: (f) => [f.customerId, f.otherCustomerId, 'cust_nobody', ...badSegments].map((s) => `/customers/${s}/orders`),
    query: [
      ['limit', ['1', '50', '100', '101', ...badQueryValues]],
      [
        'before',
        [
          cursor([A_MOMENT, NO_SUCH_ORDER]),
          cursor([1e20, NO_SUCH_ORDER]),
          cursor([-8.64e15, NO_SUCH_ORDER]),
          cursor([null, NO_SUCH_ORDER]),
          cursor(['1', NO_SUCH_ORDER]),
          cursor([A_MOMENT, 'x']),
          cursor({}),
          cursor('x'.repeat(100)),
          '!!!',
          ...badQueryValues,
        ],
      ],
    ],
  },
  {
    route: 'GET /inventory/{sku}',
    auth: 'customer',
    path: () => ['BERSERK-42', 'NOPE-1', 'berserk-42', ...badSegments].map((s) => `/inventory/${s}`),
    query: [['region', ['eu', 'us', 'mars', 'EU', ...badQueryValues]]],
  },
  {
    route: 'GET /admin/dead-letters',
    auth: 'admin',
    path: () => ['/admin/dead-letters'],
    query: [
      ['status', ['parked', 'PARKED', 'open', ...badQueryValues]],
      ['limit', ['1', '200', '201', ...badQueryValues]],
      ['before', ['1', '9007199254740993', ...badQueryValues]],
    ],
  },
  {
    route: 'GET /admin/dead-letters/{id}',
    auth: 'admin',
    path: (f) => [String(f.deadLetterId), '999999999', ...badSegments].map((s) => `/admin/dead-letters/${s}`),
    query: [],
  },
  {
    route: 'GET /orders/{id}/returns',
    auth: 'customer',
    path: (f) => [f.orderId, f.otherOrderId, NO_SUCH_ORDER, ...badSegments].map((s) => `/orders/${s}/returns`),
    query: [['x', ['1']]],
  },
  {
    route: 'GET /returns/{rma}',
    auth: 'customer',
    path: () => ['RMA-0A1B2C3D4E5F', 'rma-0a1b2c3d4e5f', ...badSegments].map((s) => `/returns/${s}`),
    query: [],
  },
  {
    route: 'GET /admin/returns',
    auth: 'admin',
    path: () => ['/admin/returns'],
    query: [
      ['status', ['awaiting_receipt', 'CLOSED', 'open', ...badQueryValues]],
      ['limit', ['1', '200', '201', ...badQueryValues]],
    ],
  },
  {
    route: 'GET /admin/flash-sales',
    auth: 'admin',
    path: () => ['/admin/flash-sales'],
    query: [['limit', badQueryValues.slice()]],
  },
  { route: 'GET /admin/hot-skus', auth: 'admin', path: () => ['/admin/hot-skus'], query: [['region', ['eu']]] },
  { route: 'GET /metrics', auth: null, path: () => ['/metrics'], query: [['name[]', ['x']]] },
  { route: 'GET /healthz', auth: null, path: () => ['/healthz'], query: [] },
  { route: 'GET /readyz', auth: null, path: () => ['/readyz'], query: [] },
];

function readRequest(r: Random, f: Fixtures, route: ReadRoute): FuzzRequest {
  const paths = route.path(f);
  const path = r.chance(0.5) ? paths[0]! : r.pick(paths);
  const params: string[] = [];
  // The first value of each parameter is a valid one: half the time it is kept, so that reads get past
  // their checks too.
  for (const [name, values] of route.query) {
    if (r.chance(0.7)) params.push(`${name}=${r.chance(0.5) ? values[0] : r.pick(values)}`);
  }
  if (r.chance(0.2))
    params.push(`${r.pick(['junk', '__proto__', 'constructor', '%00', ''])}=${r.pick(badQueryValues)}`);
  if (r.chance(0.1) && params.length > 0) params.push(r.pick(params));
  const headers: Record<string, string> = route.auth ? { authorization: `Bearer ${f.keys[route.auth]}` } : {};
  if (r.chance(0.3)) {
    const options = [
      ...badAuthHeaders(f.keys),
      { authorization: `Bearer ${f.keys.otherCustomer}` },
      { 'x-api-key': f.keys.admin },
      { authorization: `bearer ${f.keys.customer}` },
    ];
    delete headers.authorization;
    Object.assign(headers, r.pick(options));
  }
  const method = r.chance(0.1) ? r.pick(['HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) : 'GET';
  const query = params.length > 0 ? `?${params.join('&')}` : r.chance(0.05) ? '?' : '';
  return { route: route.route, method, path: `${path}${query}`, headers, mustFail: false };
}

/** Bull Board: only ever without valid credentials, or a cross-site form with them (CSRF). */
function boardRequest(r: Random, f: Fixtures): FuzzRequest {
  if (r.chance(0.5)) {
    const basicAdmin = `Basic ${Buffer.from(`admin:${f.keys.admin}`).toString('base64')}`;
    const refused = badAuthHeaders(f.keys).filter((h) => h.authorization !== basicAdmin);
    const auth = r.pick([...refused, { authorization: `Bearer ${f.keys.customer}` }]);
    return {
      route: 'GET /admin/queues',
      method: 'GET',
      path: r.pick(['/admin/queues', '/admin/queues/api/queues']),
      headers: auth,
      mustFail: true,
    };
  }
  return {
    route: 'GET /admin/queues',
    method: r.pick(['POST', 'PUT']),
    path: r.pick(['/admin/queues/api/queues/validate/pause', '/admin/queues/api/queues/ship/clean/completed']),
    headers: {
      authorization: `Basic ${Buffer.from(`admin:${f.keys.admin}`).toString('base64')}`,
      'content-type': r.pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']),
      origin: 'https://evil.example',
      'sec-fetch-site': 'cross-site',
    },
    body: Buffer.from('x=1'),
    mustFail: true,
  };
}

/** Paths and methods that are no route at all. */
function strayRequest(r: Random, f: Fixtures): FuzzRequest {
  const path = r.pick([
    '/',
    '//',
    '/orders/',
    '/orders/x/y/z',
    '/admin',
    '/admin/',
    '/ADMIN/hot-skus',
    '/%',
    '/%2e%2e/%2e%2e/etc/passwd',
    '/orders;x',
    '/inventory/',
    `/${'a/'.repeat(500)}`,
    '/admin/queues/../hot-skus',
    '/customers//orders',
  ]);
  const headers: Record<string, string> = r.chance(0.5)
    ? { authorization: `Bearer ${f.keys[r.pick(['admin', 'customer'] as const)]}` }
    : {};
  return {
    route: 'no such route',
    method: r.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']),
    path,
    headers,
    mustFail: false,
  };
}

/** `count` requests for a seed: the same seed and count give the same requests (ids and keys aside). */
export function generateRequests(r: Random, f: Fixtures, count: number): FuzzRequest[] {
  const requests: FuzzRequest[] = [];
  while (requests.length < count) {
    const roll = r.next();
    if (roll < 0.62) requests.push(writeRequest(r, f, r.pick(writeRoutes)));
    else if (roll < 0.92) requests.push(readRequest(r, f, r.pick(readRoutes)));
    else if (roll < 0.96) requests.push(boardRequest(r, f));
    else requests.push(strayRequest(r, f));
  }
  return requests;
}

function getAt(value: unknown, path: Path): unknown {
  return path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Json)[k as string] : undefined), value);
}

function setAt(value: unknown, path: Path, next: unknown): unknown {
  if (path.length === 0) return next;
  const [head, ...rest] = path;
  const container = Array.isArray(value)
    ? [...value]
    : value && typeof value === 'object'
      ? { ...(value as Json) }
      : {};
  (container as Json)[head as string] = setAt((container as Json)[head as string], rest, next);
  return container;
}

function removeAt(value: unknown, path: Path): unknown {
  if (!value || typeof value !== 'object') return value;
  const [head, ...rest] = path;
  const copy = Array.isArray(value) ? [...value] : { ...(value as Json) };
  if (rest.length === 0) delete (copy as Json)[head as string];
  else (copy as Json)[head as string] = removeAt((copy as Json)[head as string], rest);
  return copy;
}
