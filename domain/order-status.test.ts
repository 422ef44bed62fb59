import { describe, expect, it } from 'vitest';
import { canTransition, findIllegalTransition, isTerminal, type OrderStatus, orderStatuses } from './order-status.ts';

describe('canTransition', () => {
  const legal: Array<[OrderStatus, OrderStatus]> = [
    ['PENDING', 'VALIDATING'],
    ['PENDING', 'FAILED'],
    ['PENDING', 'CANCELLED'],
    ['VALIDATING', 'INVENTORY_CHECK'],
    ['VALIDATING', 'PAYMENT_PROCESSING'],
    ['INVENTORY_CHECK', 'PAYMENT_PROCESSING'],
    ['PAYMENT_PROCESSING', 'INVENTORY_CHECK'],
    ['INVENTORY_CHECK', 'RESERVED'],
    ['PAYMENT_PROCESSING', 'RESERVED'],
    ['RESERVED', 'FULFILLMENT'],
    ['RESERVED', 'CANCELLED'],
    ['FULFILLMENT', 'COMPLETED'],
    ['FULFILLMENT', 'FAILED'],
    ['FULFILLMENT', 'CANCELLED'],
    ['FAILED', 'PENDING'],
  ];
  it.each(legal)('allows %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
  });

  const illegal: Array<[OrderStatus, OrderStatus]> = [
    ['PENDING', 'PENDING'],
    ['PENDING', 'INVENTORY_CHECK'],
    ['PENDING', 'COMPLETED'],
    ['VALIDATING', 'PENDING'],
    ['VALIDATING', 'RESERVED'],
    ['RESERVED', 'VALIDATING'],
    ['RESERVED', 'INVENTORY_CHECK'],
    ['RESERVED', 'COMPLETED'],
    ['FULFILLMENT', 'RESERVED'],
    ['INVENTORY_CHECK', 'INVENTORY_CHECK'],
    ['FAILED', 'VALIDATING'],
    ['CANCELLED', 'FULFILLMENT'],
  ];
  it.each(illegal)('refuses %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });

  // FAILED → PENDING is the one exit: a retry of the order as a new generation.
  const fromTerminal = (['COMPLETED', 'FAILED', 'CANCELLED'] as const)
    .flatMap((from) => orderStatuses.map((to) => [from, to] as [OrderStatus, OrderStatus]))
    .filter(([from, to]) => !(from === 'FAILED' && to === 'PENDING'));
  it.each(fromTerminal)('refuses every other move out of a terminal status: %s → %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });
});

describe('isTerminal', () => {
  it.each([
    ['PENDING', false],
    ['VALIDATING', false],
    ['INVENTORY_CHECK', false],
    ['PAYMENT_PROCESSING', false],
    ['RESERVED', false],
    ['FULFILLMENT', false],
    ['COMPLETED', true],
    ['FAILED', true],
    ['CANCELLED', true],
  ] as Array<[OrderStatus, boolean]>)('says %s is terminal: %s', (status, terminal) => {
    expect(isTerminal(status)).toBe(terminal);
  });
});

describe('findIllegalTransition', () => {
  const happy: Array<{ from: OrderStatus | null; to: OrderStatus }> = [
    { from: null, to: 'PENDING' },
    { from: 'PENDING', to: 'VALIDATING' },
    { from: 'VALIDATING', to: 'INVENTORY_CHECK' },
    { from: 'INVENTORY_CHECK', to: 'PAYMENT_PROCESSING' },
    { from: 'PAYMENT_PROCESSING', to: 'RESERVED' },
    { from: 'RESERVED', to: 'FULFILLMENT' },
    { from: 'FULFILLMENT', to: 'COMPLETED' },
  ];

  it.each([
    ['a full happy history', happy, undefined],
    [
      'a history where payment starts before the inventory check',
      [
        { from: null, to: 'PENDING' },
        { from: 'PENDING', to: 'VALIDATING' },
        { from: 'VALIDATING', to: 'PAYMENT_PROCESSING' },
        { from: 'PAYMENT_PROCESSING', to: 'INVENTORY_CHECK' },
        { from: 'INVENTORY_CHECK', to: 'RESERVED' },
      ],
      undefined,
    ],
    ['an empty history', [], undefined],
    [
      'a history that skips a state',
      [
        { from: null, to: 'PENDING' },
        { from: 'PENDING', to: 'VALIDATING' },
        { from: 'VALIDATING', to: 'RESERVED' },
      ],
      { index: 2, from: 'VALIDATING', to: 'RESERVED' },
    ],
    [
      'a history that does not start at PENDING',
      [
        { from: null, to: 'VALIDATING' },
        { from: 'VALIDATING', to: 'INVENTORY_CHECK' },
      ],
      { index: 0, from: null, to: 'VALIDATING' },
    ],
    [
      'a history whose first entry has a from status',
      [{ from: 'PENDING', to: 'PENDING' }],
      { index: 0, from: 'PENDING', to: 'PENDING' },
    ],
    [
      'a history whose from does not match the previous to',
      [
        { from: null, to: 'PENDING' },
        { from: 'PENDING', to: 'VALIDATING' },
        { from: 'INVENTORY_CHECK', to: 'RESERVED' },
      ],
      { index: 2, from: 'INVENTORY_CHECK', to: 'RESERVED' },
    ],
    [
      'a history that moves on after a terminal status',
      [...happy, { from: 'COMPLETED', to: 'CANCELLED' }],
      { index: 7, from: 'COMPLETED', to: 'CANCELLED' },
    ],
  ] as Array<
    [
      string,
      Array<{ from: OrderStatus | null; to: OrderStatus }>,
      { index: number; from: OrderStatus | null; to: OrderStatus } | undefined,
    ]
  >)('returns the first illegal step of %s', (_name, history, expected) => {
    expect(findIllegalTransition(history)).toEqual(expected);
  });
});
