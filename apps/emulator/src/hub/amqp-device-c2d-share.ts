import { MAX_UNSETTLED_ANSWERS } from '../transport/amqp.js';

/**
 * The most cloud-to-device messages one AMQP connection holds unsettled across all its devices'
 * links. A connection may carry several devices (IoT Hub takes several put-tokens on one
 * connection, as the C SDK's shared AMQP transport multiplexes its devices), each link allowed
 * MAX_C2D_IN_FLIGHT; the listener closes a connection past MAX_UNSETTLED_ANSWERS unsettled
 * deliveries of any kind. So the links share this budget below that bound, the rest left for the
 * other answers (twin, methods, CBS): a connection's devices wait for a place instead of the
 * connection being closed. IoT Hub's own window is not documented.
 */
export const MAX_C2D_IN_FLIGHT_PER_CONNECTION = MAX_UNSETTLED_ANSWERS - 32;

/**
 * The cloud-to-device deliveries a connection holds unsettled, shared by its devices' links. A link
 * takes a place per delivery sent and gives it back when the delivery is settled or the link
 * closes; a link that found no place waits, and places given back wake the waiting links in the
 * order they began to wait (each sends what it can, and waits again at the end of the line if it
 * still has more): no device's queue keeps the others' out.
 */
export class C2dConnectionShare {
  #inFlight = 0;
  /** The pumps of the links waiting for a place, oldest first. */
  readonly #waiting: (() => void)[] = [];

  constructor(readonly limit: number = MAX_C2D_IN_FLIGHT_PER_CONNECTION) {}

  /** Places taken now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Takes a place for one delivery, or, when none is left, puts `pump` in line and says no. */
  take(pump: () => void): boolean {
    if (this.#inFlight >= this.limit) {
      if (!this.#waiting.includes(pump)) this.#waiting.push(pump);
      return false;
    }
    this.#inFlight += 1;
    return true;
  }

  /** Gives back `count` places and wakes the links in line while places are left. */
  give(count: number): void {
    this.#inFlight = Math.max(0, this.#inFlight - count);
    while (this.#inFlight < this.limit) {
      const next = this.#waiting.shift();
      if (!next) return;
      next();
    }
  }

  /** A link gone: out of the line (its places are given back with `give`). */
  leave(pump: () => void): void {
    const at = this.#waiting.indexOf(pump);
    if (at >= 0) this.#waiting.splice(at, 1);
  }
}
