import type { Logger } from '@dpskit/node-kit';
import type { HubPush } from './core/pushes.js';

/** What the follower reads: the store's push table (`SqliteHubPushes`). */
export interface HubPushFeed {
  readonly origin: string;
  after(afterSeq: number, limit: number): { seq: number; origin: string; push: HubPush }[];
  latest(): number;
}

export interface HubPushFollower {
  /**
   * Follows the feed from its newest push on, reading it every `everyMs` (while this process holds
   * devices: a push written before one was connected here was owed to none of them).
   */
  start(): void;
  /** Stops reading (no device connected here: each read would cost a query 50 times a second for nothing). */
  stop(): void;
  /** Reads the feed now (the timer does it every `everyMs`). */
  poll(): void;
  close(): void;
}

/** Rows read per query; a longer backlog is read in further queries of the same turn. */
const BATCH = 256;

/**
 * Follows the store's pushes written by the other processes on it and hands each to `deliver`
 * (the hub MQTT transport, which finds the device among its own connections or ignores the push).
 * The process's own pushes are skipped: it delivered them at once, from its hub event. Created
 * stopped: `start` when the process's first hub device connects, `stop` when its last leaves. While
 * started, a query every `everyMs` (20 ms: a push from another worker is that much later than one
 * from the same worker) on the table's primary key.
 */
export function followHubPushes(options: {
  feed: HubPushFeed;
  /** `seq`: the push's place in the store's order (a `connected` push is compared by it). */
  deliver: (push: HubPush, seq: number) => void;
  log: Logger;
  everyMs?: number;
}): HubPushFollower {
  const { feed, deliver, log } = options;
  /** The newest push seen; undefined when `start` could not read it (the poll reads it then). */
  let last: number | undefined = feed.latest();
  let failing = false;
  const failed = (err: unknown) => {
    // A busy or failing store: tried again on the next tick; said once, not every 20 ms.
    if (!failing) log.warn('hub.push', `hub pushes from other workers not read: ${(err as Error).message}`);
    failing = true;
  };
  const poll = () => {
    try {
      last ??= feed.latest();
      for (;;) {
        const rows = feed.after(last, BATCH);
        for (const row of rows) {
          last = row.seq;
          if (row.origin !== feed.origin) deliver(row.push, row.seq);
        }
        if (rows.length < BATCH) break;
      }
      failing = false;
    } catch (err) {
      failed(err);
    }
  };
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const stop = () => {
    clearInterval(timer);
    timer = undefined;
  };
  return {
    start() {
      // Closed for good (the emulator stopping, its store about to close): a late start (a device
      // or a direct method call in the moment before the hub closes) must not poll a closed store.
      if (timer || closed) return;
      // Called from aedes's clientReady, where a throw would end the process. A push written
      // before the read that succeeds is skipped, as one written before this start is: an older
      // one may be a deletion of a device that has since been created again and connected here.
      try {
        last = feed.latest();
      } catch (err) {
        last = undefined;
        failed(err);
      }
      timer = setInterval(poll, options.everyMs ?? 20);
      timer.unref();
    },
    stop,
    poll,
    close() {
      closed = true;
      stop();
    },
  };
}
