import { describe, expect, it } from 'vitest';
import { EndedChannels } from './amqp-ended-channels.js';

describe('EndedChannels', () => {
  it('drops frames on a channel the client ended, counting them, until it begins a session there again', () => {
    const ended = new EndedChannels();
    expect(ended.drop(4)).toEqual({ dropped: false });
    ended.ended(4);
    expect(ended.drop(4)).toEqual({ dropped: true, count: 1 });
    expect(ended.drop(4)).toEqual({ dropped: true, count: 2 });
    expect(ended.drop(5)).toEqual({ dropped: false });
    ended.begun(4);
    expect(ended.has(4)).toBe(false);
    expect(ended.drop(4)).toEqual({ dropped: false });
  });

  it('remembers only the latest channels: a client that begins and ends sessions all its life grows nothing', () => {
    const ended = new EndedChannels(3);
    for (let channel = 0; channel < 10_000; channel++) ended.ended(channel % 8191);
    expect(ended.size).toBe(3);
    expect([9997, 9998, 9999].map((c) => ended.has(c % 8191))).toEqual([true, true, true]);
    expect(ended.has(9996 % 8191)).toBe(false);
    // Ending a remembered channel again makes it the newest (the oldest goes first).
    ended.ended(9997 % 8191);
    ended.ended(1);
    expect([9997, 9999].map((c) => ended.has(c % 8191))).toEqual([true, true]);
    expect(ended.has(9998 % 8191)).toBe(false);
    expect(new EndedChannels().size).toBe(0);
  });
});
