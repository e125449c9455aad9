// When the built-in endpoint's open readers look at the store. A message stored in this process
// reaches its partition's readers at once (`stored`); one stored by another process serving the
// same state folder (`--workers`) is found by one poll of the endpoint, every second while anyone
// reads: it reads each partition that has readers once (its last sequence number) and wakes only
// the readers behind it. No timer runs while nobody reads.

/** A reader of one partition, as the poll sees it. */
export interface PolledReader {
  /** The hub, as the store names it. */
  readonly hub: string;
  readonly partition: number;
  /** The sequence number it sends next. */
  next(): number;
  /** Sends what it may of the partition's events from `next()` (reads the store). */
  pump(): void;
}

/** Runs `tick` every `ms` until the returned stop is called. */
export type PollTimer = (ms: number, tick: () => void) => () => void;

/** The default PollTimer: an unref'd interval (an open reader does not keep the process alive). */
export const pollInterval: PollTimer = (ms, tick) => {
  const timer = setInterval(tick, ms);
  timer.unref();
  return () => clearInterval(timer);
};

export interface EventHubPollOptions {
  everyMs: number;
  /** A partition's last sequence number (−1 when it has none). */
  lastSequenceNumber: (hub: string, partition: number) => number;
  /** A store error during a poll (the readers are woken by the next). */
  onError: (hub: string, err: unknown) => void;
  timer?: PollTimer;
}

export class EventHubPoll {
  /** Open readers by hub (lower case). */
  readonly #readers = new Map<string, Set<PolledReader>>();
  readonly #options: EventHubPollOptions;
  #stop: (() => void) | undefined;

  constructor(options: EventHubPollOptions) {
    this.#options = options;
  }

  /** Adds an open reader; returns its removal (the poll stops with the last). */
  add(reader: PolledReader): () => void {
    const key = reader.hub.toLowerCase();
    const readers = this.#readers.get(key) ?? new Set<PolledReader>();
    readers.add(reader);
    this.#readers.set(key, readers);
    this.#stop ??= (this.#options.timer ?? pollInterval)(this.#options.everyMs, () => this.poll());
    return () => {
      readers.delete(reader);
      if (readers.size === 0 && this.#readers.get(key) === readers) this.#readers.delete(key);
      if (this.#readers.size === 0) {
        this.#stop?.();
        this.#stop = undefined;
      }
    };
  }

  /** A message this process stored on `partition` of `hub`: that partition's readers send it now. */
  stored(hub: string, partition: number): void {
    for (const reader of [...(this.#readers.get(hub.toLowerCase()) ?? [])])
      if (reader.partition === partition) reader.pump();
  }

  /** One look at the store: each partition with readers read once, the readers behind it woken. */
  poll(): void {
    for (const [key, readers] of [...this.#readers]) {
      const last = new Map<number, number>();
      for (const reader of [...readers]) {
        let lastSequenceNumber = last.get(reader.partition);
        if (lastSequenceNumber === undefined) {
          try {
            lastSequenceNumber = this.#options.lastSequenceNumber(reader.hub, reader.partition);
          } catch (err) {
            this.#options.onError(key, err);
            break;
          }
          last.set(reader.partition, lastSequenceNumber);
        }
        if (reader.next() <= lastSequenceNumber) reader.pump();
      }
    }
  }

  /** Whether a poll timer runs (a reader is open). */
  get running(): boolean {
    return this.#stop !== undefined;
  }
}
