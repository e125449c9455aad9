// The one TLS connection every bench client opens, the lean devices and the bare handshakes they are
// measured against alike, so that the ceiling cannot drift from the devices: a fresh full TLS
// handshake (no session offered for resumption), the server's chain verified against the emulator's
// CA (the shared SecureContext) and its name checked against `localhost`, Nagle off as the devices
// write small packets. Nothing else is loaded here: the handshake clients import only node:tls.
import tls from 'node:tls';

export interface TlsTarget {
  host: string;
  port: number;
  /** One context for every connection (building one per device costs a CA parse each). */
  secureContext: tls.SecureContext;
}

/** Opens the connection; the handshake runs as the socket connects. */
export function connectTls(target: TlsTarget): tls.TLSSocket {
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    servername: 'localhost',
    secureContext: target.secureContext,
  });
  socket.setNoDelay(true);
  return socket;
}

/** One bare handshake to its end: verified (Node rejects a bad chain or name), then closed by the client. */
export function bareHandshake(target: TlsTarget): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connectTls(target);
    socket.once('secureConnect', () => socket.end());
    socket.once('error', reject);
    socket.once('close', () => resolve());
    // The server's session tickets arrive after the handshake: read and drop them.
    socket.resume();
  });
}
