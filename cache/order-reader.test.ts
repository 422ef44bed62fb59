import { describe, expect, it } from 'vitest';
import { customerOf } from './order-reader.ts';

const id = '9febb5c6-ad19-4758-b3ed-ac1c47c09833';
const items = [{ sku: 'ONEPIECE-105', name: 'One Piece, Vol. 105', quantity: 1 }];

describe('customerOf', () => {
  // On JSON text it finds what JSON.parse finds at the top level, with or without the fast path. (The
  // fast path reads no further than the customer id: the entry's JSON was checked when it was written.)
  const cases: Array<[string, string, string | undefined]> = [
    ['a placed group as sql/ writes it', JSON.stringify({ id, customerId: 'cust_ada', items }), 'cust_ada'],
    ['a customer id with a quote in it', JSON.stringify({ id, customerId: 'cust_"ada"', items }), 'cust_"ada"'],
    ['a customer id with a backslash in it', JSON.stringify({ id, customerId: 'cust\\ada', items }), 'cust\\ada'],
    ['a customer id with a control character', JSON.stringify({ id, customerId: 'cust\nada' }), 'cust\nada'],
    ['an empty customer id', JSON.stringify({ id, customerId: '', items }), ''],
    ['the keys in another order', JSON.stringify({ customerId: 'cust_ada', id, items }), 'cust_ada'],
    ['an id that is not a UUID', JSON.stringify({ id: `${id.slice(0, 35)}"`, customerId: 'cust_ada' }), 'cust_ada'],
    ['a customerId only inside another field', JSON.stringify({ id, items: [{ customerId: 'cust_ada' }] }), undefined],
    ['a customer id that is not a string', JSON.stringify({ id, customerId: 7 }), undefined],
    ['text that is not JSON', `{"id":"${id}","customerId":"cust_ada`, undefined],
  ];
  it.each(cases)('reads %s', (_, json, expected) => {
    expect(customerOf(json)).toBe(expected);
  });
});
