import type { Sender } from 'rhea';
import { describe, expect, it } from 'vitest';
import { creditLeft } from './amqp-sender-credit.js';

/** A sender as rhea keeps it: the credit the client gave, less what rhea has written; what it has written. */
const link = (credit: number, written: number) => ({ credit, delivery_count: written }) as unknown as Sender;

describe('creditLeft', () => {
  it('takes off the messages given to rhea that it has not written yet', () => {
    expect(creditLeft(link(10, 0), 0)).toBe(10);
    expect(creditLeft(link(10, 0), 4)).toBe(6);
    expect(creditLeft(link(10, 0), 10)).toBe(0);
    // rhea wrote them: its credit and delivery count moved, the answer did not.
    expect(creditLeft(link(6, 4), 4)).toBe(6);
    expect(creditLeft(link(6, 4), 7)).toBe(3);
  });

  it('is nothing after a drain (the delivery count moved past what was sent) or on a link without credit', () => {
    expect(creditLeft(link(0, 10), 4)).toBe(0);
    expect(creditLeft({} as Sender, 0)).toBe(0);
  });
});
