import { describe, expect, it } from 'vitest';
import { OpenEndpoints } from './amqp-open-endpoints.js';

class Endpoint {
  closed = false;
  constructor(readonly name: string) {}
  is_closed(): boolean {
    return this.closed;
  }
}

describe('OpenEndpoints', () => {
  it('does not grow with endpoints opened and closed one after another for a connection’s whole life', () => {
    const set = new OpenEndpoints<Endpoint>();
    for (let i = 0; i < 1000; i++) {
      const endpoint = new Endpoint(`s${i}`);
      set.add(endpoint);
      endpoint.closed = true;
    }
    expect(set.size).toBe(1);
  });

  it('keeps every endpoint not yet closed, in the order they came (the newest last)', () => {
    const set = new OpenEndpoints<Endpoint>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => new Endpoint(name));
    set.add(a!);
    set.add(b!);
    b!.closed = true;
    set.add(c!);
    set.add(d!);
    expect([...set].map((e) => e.name)).toEqual(['a', 'c', 'd']);
  });
});
