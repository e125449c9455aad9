/**
 * The channels of sessions a client has ended on one connection (pure; no socket), so that the
 * frames it sends on such a channel after its END are dropped instead of closing the connection.
 *
 * rhea, under @azure/event-hubs and the IoT SDKs, does send them: a receiver that closes its link
 * and ends its session while the server's next message is on the wire still takes that message
 * (its session lives until the server's END comes back) and settles it, so its DISPOSITION follows
 * its own END. rhea as the server forgets a session once the ENDs are exchanged and throws on any
 * later frame naming its channel ("disposition received on invalid channel"), which closed the
 * whole connection (`amqp:illegal-state`). The client's other operations then waited for answers
 * that never came: rhea-promise's link close listens for its link's DETACH or the socket's end, not
 * for a peer's CLOSE, so an EventHubConsumerClient's close() failed after its 60 s operation timeout
 * ("Unable to close the sender … on amqp session … due to operation timeout": its `$cbs` link).
 * The race needs only a message in flight as the client closes, which CPU load makes likely.
 *
 * Microsoft.Azure.Amqp (the AMQP stack of IoT Hub and Event Hubs) drops an END or DETACH on a
 * channel it has no session for ("The session close may timed out already"), and every such frame
 * with its `IgnoreMissingSessions` setting (Azure/azure-amqp src/AmqpConnection.cs,
 * OnReceiveSessionFrame). Here: the frames a client may still send on a session it has just ended
 * (TRANSFER, FLOW, DISPOSITION, DETACH, END) are dropped on a channel it ended, until it begins a
 * session there again; on a channel it never began they still close the connection, as does an
 * ATTACH (no client attaches a link on a session it ended).
 */
export class EndedChannels {
  /** Ended channels, oldest first, each with how many late frames were dropped on it. */
  readonly #channels = new Map<number, number>();
  readonly #max: number;

  /** `max`: how many of the latest ended channels are remembered (the oldest is forgotten first). */
  constructor(max = EndedChannels.DEFAULT_MAX) {
    this.#max = max;
  }

  /**
   * Channels remembered per connection: a client has at most MAX_SESSIONS_PER_CONNECTION sessions
   * at once and its late frames follow its END at once, so a few dozen are plenty; a client that
   * begins and ends sessions for a whole connection's life cannot make the set grow past it.
   */
  static readonly DEFAULT_MAX = 64;

  /** The client ended the session on `channel` (its END was taken). */
  ended(channel: number): void {
    this.#channels.delete(channel);
    this.#channels.set(channel, 0);
    if (this.#channels.size > this.#max) {
      const oldest = this.#channels.keys().next().value;
      if (oldest !== undefined) this.#channels.delete(oldest);
    }
  }

  /** The client began a session on `channel`: its frames there are the new session's. */
  begun(channel: number): void {
    this.#channels.delete(channel);
  }

  /** Whether `channel` is one the client ended (and has not begun again). */
  has(channel: number): boolean {
    return this.#channels.has(channel);
  }

  /**
   * A frame on `channel` is dropped if the client ended it: true then, with how many were dropped
   * there so far (one log line for the first is enough).
   */
  drop(channel: number): { dropped: false } | { dropped: true; count: number } {
    const count = this.#channels.get(channel);
    if (count === undefined) return { dropped: false };
    this.#channels.set(channel, count + 1);
    return { dropped: true, count: count + 1 };
  }

  get size(): number {
    return this.#channels.size;
  }
}

/** The frames dropped on a channel the client ended (see EndedChannels), by rhea's handler names. */
export const LATE_SESSION_FRAMES = ['end', 'detach', 'transfer', 'flow', 'disposition'] as const;
