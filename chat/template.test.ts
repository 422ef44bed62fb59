import { describe, expect, it } from 'vitest';
import { findProducts } from './products.ts';
import { matchIntent } from './template.ts';

const ORDER = '0b6f3c8e-3c1e-4e7a-9c55-0d7c2f0c1a11';

describe('matchIntent', () => {
  it.each([
    ["Where's my package?", { kind: 'status', orderId: null }],
    [`Where is order ${ORDER}?`, { kind: 'status', orderId: ORDER }],
    ['has it shipped yet', { kind: 'status', orderId: null }],
    ['Is volume 5 in stock?', { kind: 'stock', product: 'Is volume 5 in stock?' }],
    ['Show me my recent orders', { kind: 'recent' }],
    ['I want to return that one', { kind: 'return', orderId: null, product: null }],
    ['I want to return the Chainsaw Man', { kind: 'return', orderId: null, product: 'Chainsaw Man' }],
    [`I want to return order ${ORDER}`, { kind: 'return', orderId: ORDER, product: null }],
    ['yes', { kind: 'confirm', proposalId: null }],
    ['Yes, please', { kind: 'confirm', proposalId: null }],
    ['confirm p-1a2b3c', { kind: 'confirm', proposalId: 'P-1A2B3C' }],
    ['no, cancel that', { kind: 'decline' }],
    ['hello', { kind: 'help' }],
  ])('reads %j as %j', (message, intent) => {
    expect(matchIntent(message)).toEqual(intent);
  });

  it('takes no long message, and no "yes" that says no, as a confirmation', () => {
    expect(matchIntent(`yes ${'and also '.repeat(20)}`).kind).not.toBe('confirm');
    expect(matchIntent("yes, but don't do it").kind).not.toBe('confirm');
    expect(matchIntent('I said yes').kind).not.toBe('confirm');
  });
});

describe('findProducts', () => {
  const catalog = [
    { sku: 'BERSERK-41', name: 'Berserk, Vol. 41' },
    { sku: 'BERSERK-42', name: 'Berserk, Vol. 42' },
    { sku: 'ONEPIECE-105', name: 'One Piece, Vol. 105' },
    { sku: 'CHAINSAW-05', name: 'Chainsaw Man, Vol. 5' },
  ];
  it.each([
    ['is volume 5 in stock?', ['CHAINSAW-05']],
    ['Berserk 42', ['BERSERK-42']],
    ['berserk', ['BERSERK-41', 'BERSERK-42']],
    ['do you have ONEPIECE-105?', ['ONEPIECE-105']],
    ['vol. 105', ['ONEPIECE-105']],
    ['naruto', []],
    ['is it in stock?', []],
  ])('finds %j as %j', (phrase, skus) => {
    expect(findProducts(catalog, phrase).map((p) => p.sku)).toEqual(skus);
  });
});
