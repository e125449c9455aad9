// The connection's cloud-to-device budget shared by its devices' links (pure: no sockets).
import { describe, expect, it } from 'vitest';
import { MAX_UNSETTLED_ANSWERS } from '../transport/amqp.js';
import { C2dConnectionShare, MAX_C2D_IN_FLIGHT_PER_CONNECTION } from './amqp-device-c2d-share.js';
import { MAX_C2D_IN_FLIGHT } from './core/c2d.js';

/** A link with `queued` messages that sends while the share gives it a place. */
function link(share: C2dConnectionShare, queued: number) {
  const state = { queued, sent: 0 };
  const pump = () => {
    while (state.queued > 0) {
      if (!share.take(pump)) return;
      state.queued -= 1;
      state.sent += 1;
    }
  };
  return { state, pump };
}

describe('C2dConnectionShare', () => {
  it('stays under the listener bound with room left for other answers, and above one link’s window', () => {
    expect(MAX_C2D_IN_FLIGHT_PER_CONNECTION).toBeLessThan(MAX_UNSETTLED_ANSWERS);
    expect(MAX_C2D_IN_FLIGHT_PER_CONNECTION).toBeGreaterThan(MAX_C2D_IN_FLIGHT);
  });

  it('holds the limit across links, and wakes the waiting links in turn as places come back', () => {
    const share = new C2dConnectionShare(4);
    const a = link(share, 3);
    const b = link(share, 3);
    const c = link(share, 3);
    a.pump();
    b.pump();
    c.pump();
    expect([a.state.sent, b.state.sent, c.state.sent, share.inFlight]).toEqual([3, 1, 0, 4]);
    // One place back: b (waiting first) sends one and lines up again behind c.
    share.give(1);
    expect([b.state.sent, c.state.sent]).toEqual([2, 0]);
    share.give(1);
    expect([b.state.sent, c.state.sent]).toEqual([2, 1]);
    share.give(2);
    expect([b.state.sent, c.state.sent, share.inFlight]).toEqual([3, 2, 4]);
    // A link gone leaves the line; its places come back through give.
    share.leave(c.pump);
    share.give(4);
    expect([c.state.sent, share.inFlight]).toEqual([2, 0]);
  });

  it('never goes below zero, and lines a link up once', () => {
    const share = new C2dConnectionShare(1);
    const a = link(share, 2);
    a.pump();
    a.pump();
    share.give(5);
    expect([a.state.sent, share.inFlight]).toEqual([2, 1]);
  });
});
