import type { Logger } from '@dpskit/node-kit';

/** OpenSSL's messages for a first record that is not TLS at all (plain MQTT, AMQP or HTTP). */
const NOT_TLS = /wrong version number|http request|unknown protocol|packet length too long/i;

/** One listener's names in its TLS failure lines: `mqtt`/`MQTT`/`mqtts`, and so on. */
export interface TlsListenerNames {
  /** The event prefix: `<kind>.protocol`, `<kind>.tls`. */
  kind: string;
  /** The port as a user knows it, in the warning: "a client on the <port> port". */
  port: string;
  /** The URL scheme the client should have used. */
  scheme: string;
}

/**
 * The handler for a TLS listener's `tlsClientError`, shared by the MQTT, HTTPS and AMQP listeners.
 * A client that is not speaking TLS at all is worth a warning that says what to use instead; any
 * other failed handshake (a wrong CA, a client that hung up) is a debug line. `log` is the logger
 * the listener passes: its limited one, where `<kind>.protocol` is limited.
 */
export function logTlsClientError(log: Logger, names: TlsListenerNames): (err: NodeJS.ErrnoException) => void {
  return (err) => {
    if (NOT_TLS.test(err.message)) {
      log.warn(
        `${names.kind}.protocol`,
        `a client on the ${names.port} port did not speak TLS (${err.message}): use ${names.scheme}:// with the emulator's CA`,
        { code: err.code },
      );
    } else {
      log.debug(`${names.kind}.tls`, `TLS handshake failed: ${err.message}`);
    }
  };
}
