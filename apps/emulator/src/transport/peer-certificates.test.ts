import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestCa,
  createTestDeviceCertificate,
  derChain,
  pemChain,
  type TestCertificate,
} from '../testing/certificates.js';
import { CLIENT_CERTIFICATE_TLS_OPTIONS, carriedOverTls, peerCertificateChain } from './peer-certificates.js';

let server: tls.Server;
let ca: TestCertificate;
let serverCert: TestCertificate;
const seen: Buffer[][] = [];

beforeAll(async () => {
  ca = await createTestCa('peer test CA');
  serverCert = await createTestDeviceCertificate('localhost', { issuer: ca });
  server = tls.createServer(
    { cert: serverCert.cert, key: serverCert.key, ...CLIENT_CERTIFICATE_TLS_OPTIONS },
    (socket) => {
      const stream = new PassThrough();
      carriedOverTls(stream, socket);
      seen.push(peerCertificateChain(socket), peerCertificateChain(stream));
      socket.end();
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const connect = (options: tls.ConnectionOptions) =>
  new Promise<void>((resolve, reject) => {
    // The server's identity is not what is tested (its test certificate is a client certificate).
    const socket = tls.connect({
      port: (server.address() as AddressInfo).port,
      host: '127.0.0.1',
      rejectUnauthorized: false,
      ...options,
    });
    socket.on('error', reject);
    socket.on('close', () => resolve());
    socket.resume();
  });

describe('peerCertificateChain', () => {
  it('reads the chain a client sent, leaf first, on the socket and on a stream carried over it', async () => {
    const line = await createTestCa('line', { issuer: ca });
    const device = await createTestDeviceCertificate('dev-1', { issuer: line });
    seen.length = 0;
    await connect({ cert: pemChain(device, line), key: device.key });
    expect(seen[0]).toEqual(derChain(pemChain(device, line)));
    expect(seen[1]).toEqual(seen[0]);
  });

  it('is empty for a client without a certificate, which the listener still serves', async () => {
    seen.length = 0;
    await connect({});
    expect(seen).toEqual([[], []]);
    expect(peerCertificateChain(new PassThrough())).toEqual([]);
    expect(peerCertificateChain(undefined)).toEqual([]);
  });
});
