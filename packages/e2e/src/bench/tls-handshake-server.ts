// The end-to-end bench's ceiling server: node:tls with the emulator's own certificate and key (the
// same chain, key type and TLS settings a device meets: like the emulator's listeners it asks every
// client for a certificate and accepts none, as X.509 and symmetric-key devices share them), doing
// nothing but the handshake; the client closes. Prints {"port":N} once listening. Usage: node tls-handshake-server.js <cert.pem> <key.pem>
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

const [certFile, keyFile] = process.argv.slice(2);
const options = {
  cert: readFileSync(certFile ?? ''),
  key: readFileSync(keyFile ?? ''),
  requestCert: true,
  rejectUnauthorized: false,
};
const server = tls.createServer(options, (socket) => {
  socket.on('error', () => {});
  socket.resume();
});
server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
