import { describe, expect, it } from 'vitest';
import { EventHubPoll, type PolledReader, type PollTimer } from './eventhub-poll.js';

/** A poll on a hand-run timer, over partitions whose last sequence numbers the test sets. */
function setup() {
  const last = new Map<string, number>();
  const reads: string[] = [];
  const errors: string[] = [];
  let tick: (() => void) | undefined;
  let timers = 0;
  const timer: PollTimer = (_ms, run) => {
    timers += 1;
    tick = run;
    return () => {
      tick = undefined;
    };
  };
  const poll = new EventHubPoll({
    everyMs: 1000,
    lastSequenceNumber: (hub, partition) => {
      reads.push(`${hub}/${partition}`);
      const value = last.get(`${hub}/${partition}`);
      if (value === undefined) throw new Error('SQLITE_BUSY');
      return value;
    },
    onError: (hub, err) => errors.push(`${hub}: ${(err as Error).message}`),
    timer,
  });
  const pumped: string[] = [];
  const reader = (name: string, hub: string, partition: number, next: number): PolledReader => ({
    hub,
    partition,
    next: () => next,
    pump: () => pumped.push(name),
  });
  return {
    poll,
    last,
    reads,
    errors,
    pumped,
    reader,
    tick: () => tick?.(),
    get ticking() {
      return tick !== undefined;
    },
    get timers() {
      return timers;
    },
  };
}

describe("the built-in endpoint's poll", () => {
  it('reads each partition with readers once a tick, whatever the number of readers, and wakes only those behind', () => {
    const t = setup();
    t.last.set('Hub-A/0', 4).set('Hub-A/1', -1).set('hub-b/0', 9);
    const removals = [
      t.poll.add(t.reader('a0-behind', 'Hub-A', 0, 3)),
      t.poll.add(t.reader('a0-caught-up', 'Hub-A', 0, 5)),
      t.poll.add(t.reader('a0-at-last', 'Hub-A', 0, 4)),
      t.poll.add(t.reader('a1-empty', 'Hub-A', 1, 0)),
      t.poll.add(t.reader('b0-behind', 'hub-b', 0, 0)),
    ];
    expect(t.timers).toBe(1);
    t.tick();
    expect(t.reads.sort()).toEqual(['Hub-A/0', 'Hub-A/1', 'hub-b/0']);
    expect(t.pumped.sort()).toEqual(['a0-at-last', 'a0-behind', 'b0-behind']);
    for (const remove of removals) remove();
  });

  it('runs no timer while nobody reads, and one again for the next reader', () => {
    const t = setup();
    expect(t.ticking).toBe(false);
    const first = t.poll.add(t.reader('one', 'hub-a', 0, 0));
    const second = t.poll.add(t.reader('two', 'hub-a', 1, 0));
    expect([t.ticking, t.timers, t.poll.running]).toEqual([true, 1, true]);
    first();
    expect(t.ticking).toBe(true);
    second();
    expect([t.ticking, t.poll.running]).toEqual([false, false]);
    t.poll.add(t.reader('three', 'hub-a', 0, 0))();
    expect([t.ticking, t.timers]).toEqual([false, 2]);
  });

  it("wakes at once only the stored message's partition's readers, without reading the store", () => {
    const t = setup();
    t.poll.add(t.reader('a0', 'hub-a', 0, 0));
    t.poll.add(t.reader('a2', 'hub-a', 2, 0));
    t.poll.add(t.reader('b0', 'hub-b', 0, 0));
    t.poll.stored('HUB-A', 0);
    expect(t.pumped).toEqual(['a0']);
    expect(t.reads).toEqual([]);
  });

  it('reports a store error once for its hub and polls again at the next tick', () => {
    const t = setup();
    t.poll.add(t.reader('a0', 'hub-a', 0, 0));
    t.poll.add(t.reader('a0-too', 'hub-a', 0, 0));
    t.poll.add(t.reader('b0', 'hub-b', 0, 0));
    t.last.set('hub-b/0', 0);
    t.tick();
    expect(t.errors).toEqual(['hub-a: SQLITE_BUSY']);
    expect(t.pumped).toEqual(['b0']);
    t.last.set('hub-a/0', 0);
    t.tick();
    expect(t.pumped).toEqual(['b0', 'a0', 'a0-too', 'b0']);
  });
});
