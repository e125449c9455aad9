import net from 'node:net';
import tls from 'node:tls';
import { createRegistrationSasToken, createSasToken, DpsErrorCode } from '@dpskit/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator.js';
import { HUB_OWNER_POLICY_NAME, WELL_KNOWN_HUB_KEY } from '../hub/core/hub-service.js';
import { closedPortUrl, groupDeviceKey, HUB_A, ID_SCOPE } from '../testing/fixtures.js';
import { rawRequest } from '../testing/raw-https.js';
import { connectRawDevice } from '../testing/raw-mqtt.js';
import { register } from '../testing/sdk.js';
import { startTestBed } from '../testing/test-bed.js';

// Issue 8 items 6, 7, 9: every stage of a connection is bounded, the listeners cap their
// connections with a clear refusal, deep JSON is refused with 400001, CONNECT is answered, and
// good devices keep provisioning through it all.

let emulator: Emulator;
let close: (() => Promise<void>) | undefined;
const warnings: string[] = [];

beforeAll(async () => {
  const unused = await closedPortUrl();
  ({ emulator, close } = await startTestBed(unused, unused, {
    limits: { idleTimeoutMs: 400, handshakeTimeoutMs: 400, maxConnections: 8 },
    log: (record) => {
      if (record.level === 'warn') warnings.push(record.msg);
    },
  }));
});
afterAll(async () => close?.());

const closedByServer = (socket: net.Socket | tls.TLSSocket) =>
  new Promise<void>((resolve) => {
    socket.on('error', () => {});
    socket.once('close', () => resolve());
  });

/**
 * Writes `bytes` on a fresh TLS connection to the HTTPS listener and returns everything it answers
 * until the server closes the connection. With `endOnAnswer`, the client half-closes once an answer
 * begins (as a client whose body stalled would give up), so only the server's close is awaited.
 */
const answerUntilClosed = async (bytes: string, { endOnAnswer = false } = {}): Promise<string> => {
  const socket = tls.connect({
    port: emulator.endpoints.https?.port ?? 0,
    host: '127.0.0.1',
    servername: 'localhost',
    ca: emulator.caCertPem,
  });
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const closed = closedByServer(socket);
  socket.write(bytes);
  if (endOnAnswer) socket.on('data', () => socket.end());
  await closed;
  return text;
};

/** The JSON body of a raw HTTP/1.1 answer. */
const bodyOf = (answer: string): unknown => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));

const provisions = async (id: string, transport: 'mqtt' | 'https' | 'amqp') =>
  (await register(emulator, id, groupDeviceKey('hashed', id), { transport })).status;

describe('connection bounds', () => {
  // Each TLS listener: the README's limits hold for "every device connection", per listener.
  const portOf = (transport: 'mqtt' | 'https' | 'amqp') =>
    transport === 'mqtt'
      ? emulator.endpoints.mqtt.port
      : ((transport === 'https' ? emulator.endpoints.https?.port : emulator.endpoints.amqp?.port) ?? 0);

  it.each(['mqtt', 'https', 'amqp'] as const)('closes a %s TCP connection that never starts TLS', async (transport) => {
    const port = portOf(transport);
    const socket = net.connect(port, '127.0.0.1');
    await closedByServer(socket);
  });

  it.each(['mqtt', 'https', 'amqp'] as const)(
    'closes a %s TLS connection that never sends anything',
    async (transport) => {
      const port = portOf(transport);
      const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: emulator.caCertPem });
      await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
      await closedByServer(socket);
    },
  );

  it('closes an MQTT session with bad credentials and keepalive 0', async () => {
    const device = await connectRawDevice(emulator, {
      clientId: 'hashed-idle',
      username: `${ID_SCOPE}/registrations/hashed-idle/api-version=2019-03-31`,
      password: 'SharedAccessSignature sr=x&sig=YWJj&se=1',
      keepalive: 0,
    });
    await device.closed;
  });

  it.each(['mqtt', 'amqp'] as const)(
    'refuses %s connections beyond the cap with a warning, and serves again once they close',
    async (transport) => {
      const port = portOf(transport);
      const warned = warnings.length;
      const held = await Promise.all(
        Array.from({ length: 8 }, async () => {
          const socket = net.connect(port, '127.0.0.1');
          socket.on('error', () => {});
          await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
          return socket;
        }),
      );
      const extra = net.connect(port, '127.0.0.1');
      await closedByServer(extra);
      expect(warnings.slice(warned).some((w) => w.includes('the limit (limits.maxConnections)'))).toBe(true);
      for (const socket of held) socket.destroy();
      // The held ones are gone (and the handshake timeout would have closed them anyway).
      await Promise.all(held.map((socket) => (socket.closed ? undefined : closedByServer(socket))));
      expect(await provisions(`hashed-after-cap-${transport}`, transport)).toBe('assigned');
    },
  );

  it('answers an HTTP CONNECT with a DPS error body', async () => {
    const text = await answerUntilClosed('CONNECT hub.example:443 HTTP/1.1\r\nHost: hub.example:443\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    expect(bodyOf(text)).toMatchObject({
      errorCode: DpsErrorCode.MethodNotAllowed,
    });
  });

  it('answers headers larger than the bound with 431 and a DPS error body', async () => {
    const response = await rawRequest(emulator, {
      method: 'GET',
      path: `/${ID_SCOPE}/registrations/x?api-version=2019-03-31`,
      headers: { 'x-filler': 'a'.repeat(20 * 1024) },
    });
    expect(response.status).toBe(431);
    expect(response.json).toMatchObject({ errorCode: DpsErrorCode.RequestHeaderFieldsTooLarge });
  });

  it('answers a request whose announced body never arrives with 408 and a DPS error body, then closes', async () => {
    // 40 bytes announced, 2 sent, then silence; with a valid token (one without is answered 401
    // from its headers, its body never waited for).
    const token = createRegistrationSasToken({
      idScope: ID_SCOPE,
      registrationId: 'stalled',
      key: groupDeviceKey('hashed', 'stalled'),
    });
    const text = await answerUntilClosed(
      `PUT /${ID_SCOPE}/registrations/stalled/register?api-version=2019-03-31 HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${token}\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"`,
      { endOnAnswer: true },
    );
    expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(text).toMatch(/\r\nconnection: close\r\n/i);
    expect(bodyOf(text)).toMatchObject({
      errorCode: DpsErrorCode.RequestTimeout,
      message: expect.stringContaining('Content-Length 40'),
    });
  });
});

describe('a stalled body on a hub path', () => {
  it("is answered 408 in IoT Hub's error shape (as every hub answer), then closed", async () => {
    // A registry twin patch with a valid token (its headers pass), 40 bytes announced, 2 sent.
    const token = createSasToken({
      resource: HUB_A,
      key: WELL_KNOWN_HUB_KEY,
      keyName: HUB_OWNER_POLICY_NAME,
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
    });
    const text = await answerUntilClosed(
      `PATCH /twins/stalled-twin?api-version=2021-04-12 HTTP/1.1\r\nHost: ${HUB_A}\r\nAuthorization: ${token}\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"`,
      { endOnAnswer: true },
    );
    expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(text).toMatch(/\r\niothub-errorcode: RequestTimeout\r\n/i);
    const body = bodyOf(text) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['ExceptionMessage', 'Message']);
    expect(body.Message).toMatch(
      /^ErrorCode:RequestTimeout;The request body did not arrive in time: .*Content-Length 40/,
    );
  });
});

describe('JSON depth bounds on the device API', () => {
  const deep = (id: string) => `{"registrationId":"${id}","payload":{"a":${'['.repeat(40_000)}${']'.repeat(40_000)}}}`;

  it('refuses a payload nested 40,000 deep with 400001 over HTTPS and MQTT, and keeps serving', async () => {
    const id = 'hashed-deep';
    const token = createRegistrationSasToken({
      idScope: ID_SCOPE,
      registrationId: id,
      key: groupDeviceKey('hashed', id),
    });
    const https = await rawRequest(emulator, {
      method: 'PUT',
      path: `/${ID_SCOPE}/registrations/${id}/register?api-version=2019-03-31`,
      headers: { Authorization: token },
      body: deep(id),
    });
    expect(https.status).toBe(400);
    expect(https.json).toMatchObject({
      errorCode: DpsErrorCode.InvalidRequestBody,
      message: expect.stringContaining('nested more than 64 levels deep'),
    });
    const device = await connectRawDevice(emulator, {
      clientId: id,
      username: `${ID_SCOPE}/registrations/${id}/api-version=2019-03-31`,
      password: token,
    });
    try {
      await new Promise<void>((resolve, reject) =>
        device.client.subscribe('$dps/registrations/res/#', { qos: 1 }, (err) => (err ? reject(err) : resolve())),
      );
      const mqtt = await device.request('$dps/registrations/PUT/iotdps-register/?$rid=1', deep(id), '1');
      expect(mqtt).toMatchObject({ status: 400, body: { errorCode: DpsErrorCode.InvalidRequestBody } });
    } finally {
      await device.end();
    }
    expect(await provisions('hashed-after-deep', 'https')).toBe('assigned');
  });
});
