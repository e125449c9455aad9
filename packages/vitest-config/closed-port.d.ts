/** A loopback port nothing listens on (1), checked to refuse connections on 127.0.0.1. */
export declare function closedPort(): Promise<number>;
