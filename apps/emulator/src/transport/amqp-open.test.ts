// The AMQP listener's connections held (startAmqpTransport over real TLS, a raw rhea client): a
// connection closed properly (AMQP CLOSE both ways, as the SDKs' close() does) is let go once its
// socket ends. rhea emits 'disconnected' only for a connection that ends unclosed, so every such
// registration used to stay referenced until the listener stopped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@dpskit/node-kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DeviceApi } from '../core/device-api.js';
import { enrollmentSet } from '../core/model.js';
import { RegistrationService } from '../core/registrations.js';
import { MemoryRegistrationStore } from '../core/store.js';
import { rheaConnect, whenOpen } from '../testing/raw-amqp.js';
import { ensureCertificates } from '../tls/certificates.js';
import { type RunningAmqpTransport, startAmqpTransport } from './amqp.js';

const SCOPE = '0ne00000A0A';
let dir: string;
let ca: string;
let transport: RunningAmqpTransport;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dpskit-amqp-open-'));
  const tls = await ensureCertificates({ dir });
  ca = tls.caCertPem;
  const service = new RegistrationService({
    model: {
      idScope: SCOPE,
      defaultAllocationPolicy: 'hashed',
      linkedHubs: [{ hostName: 'hub-a.azure-devices.net', allocationWeight: 1, applyAllocationPolicy: true }],
      enrollments: enrollmentSet([]),
    },
    store: new MemoryRegistrationStore(),
    callWebhook: async () => ({ kind: 'timeout', timeoutMs: 1, latencyMs: 1 }),
    webhookRetry: { count: 0, initialIntervalMs: 0, incrementMs: 0 },
  });
  transport = await startAmqpTransport({
    api: new DeviceApi(service, { retryAfterSeconds: 0 }),
    tls: { cert: tls.serverCertPem, key: tls.serverKeyPem },
    host: '127.0.0.1',
    port: 0,
    log: createLogger(() => {}, 'debug'),
  });
});
afterAll(async () => {
  await transport?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A DPS device connection (SASL PLAIN, an unknown enrollment's token) opened, then closed properly. */
async function openAndClose(id: string): Promise<void> {
  const connection = rheaConnect(transport.port, ca, {
    username: `${SCOPE}/registrations/${id}`,
    password: `SharedAccessSignature sr=${SCOPE}%2Fregistrations%2F${id}&sig=c2ln&se=4102444800&skn=registration`,
  });
  // Listened for before the open: the server answers this unknown device's OPEN with its OPEN and
  // at once a CLOSE (unauthorized), and when both frames come in one read rhea emits
  // connection_close in the same turn as connection_open, before an `await` of the open resumes.
  const closed = new Promise<void>((resolve) => connection.once('connection_close', () => resolve()));
  await whenOpen(connection);
  expect(transport.openConnections()).toBeGreaterThan(0);
  connection.close();
  await closed;
}

describe('the AMQP listener', () => {
  it('lets go of connections closed properly once their sockets end', async () => {
    for (let i = 0; i < 3; i++) await openAndClose(`open-${i}`);
    // The server's socket 'end' comes after the client's CLOSE exchange, on its own turn.
    await vi.waitFor(() => expect(transport.openConnections()).toBe(0), { timeout: 60_000, interval: 20 });
  });
});
