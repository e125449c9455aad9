/** What the set needs of a rhea session or link. */
export interface AmqpEndpoint {
  /** rhea: closed on both sides (and not merely not yet opened, which a link the peer just attached is). */
  is_closed(): boolean;
}

/**
 * The sessions or links a connection has had, kept for as long as the connection lives but without
 * those both sides have since closed: each `add` drops them first. A client may begin and end
 * sessions (or attach and detach links) for the whole life of one connection; a plain Set or array
 * would grow with every one of them until the connection closes. Insertion order is kept (the
 * newest last).
 */
export class OpenEndpoints<T extends AmqpEndpoint> implements Iterable<T> {
  readonly #endpoints = new Set<T>();

  add(endpoint: T): void {
    for (const known of this.#endpoints) if (known.is_closed()) this.#endpoints.delete(known);
    this.#endpoints.add(endpoint);
  }

  get size(): number {
    return this.#endpoints.size;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.#endpoints[Symbol.iterator]();
  }
}
