import type { LogRecord } from '@dpskit/node-kit';
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RegistrationEvent } from '../core/events.js';
import type { Emulator } from '../emulator.js';
import { closedPortUrl, groupDeviceKey } from '../testing/fixtures.js';
import { logClock } from '../testing/log-clock.js';
import {
  connectAndSubscribe,
  DISCONNECT,
  dpsConnect,
  dpsToken,
  dpsUsername,
  MALFORMED,
  PINGREQ,
  PUBLISH_OUTSIDE,
  rawMqttConnection,
} from '../testing/mqtt-bytes.js';
import { rawTlsExchange } from '../testing/raw-amqp.js';
import { connectRawDevice, type RawMqttDevice, subscribeResponses } from '../testing/raw-mqtt.js';
import { register } from '../testing/sdk.js';
import { startTestBed } from '../testing/test-bed.js';
import { MAX_REQUEST_ID_LENGTH } from './mqtt-topics.js';

// What the SDK never sends, over a raw MQTT client: the broker must answer with DPS error bodies
// or drop only the offending connection, and keep serving everyone else.

let emulator: Emulator;
let events: RegistrationEvent[];
let close: (() => Promise<void>) | undefined;
const open: RawMqttDevice[] = [];
const logs: LogRecord[] = [];
// Each test in a second of its own on the log's clock: the first warning of each kind it causes is
// logged in full. On the wall clock a warning held by one test (counted, not logged in full) came
// out as a count line a second later, in whichever test was running then.
const clock = logClock();
beforeEach(() => clock.nextSecond());

beforeAll(async () => {
  const unused = await closedPortUrl();
  ({ emulator, events, close } = await startTestBed(unused, unused, {
    httpsPort: null,
    log: (record) => logs.push(record),
    logClock: clock.now,
  }));
});
afterAll(async () => {
  await Promise.all(open.map((device) => device.end()));
  await close?.();
});

const REGISTER = (rid: string) => `$dps/registrations/PUT/iotdps-register/?$rid=${rid}`;

async function device(id: string, overrides: { clientId?: string; username?: string; password?: string } = {}) {
  const connected = await connectRawDevice(emulator, {
    clientId: id,
    username: dpsUsername(id),
    password: dpsToken(id),
    ...overrides,
  });
  open.push(connected);
  return connected;
}

describe('MQTT edge cases', () => {
  it('answers malformed and mismatched requests with DPS error bodies on the same connection', async () => {
    const d = await device('hashed-raw-mqtt');
    expect(await subscribeResponses(d)).toBe(1);
    expect(await d.request(REGISTER('r1'), 'not json', 'r1')).toMatchObject({
      status: 400,
      body: { errorCode: 400001 },
    });
    expect(await d.request(REGISTER('r2'), JSON.stringify({ registrationId: 'someone-else' }), 'r2')).toMatchObject({
      status: 400,
      body: { errorCode: 400002 },
    });
    expect(
      await d.request('$dps/registrations/GET/iotdps-get-operationstatus/?$rid=r3&operationId=4.0.0', ' ', 'r3'),
    ).toMatchObject({
      status: 404,
      body: { errorCode: 404006 },
    });
    expect(await d.request('$dps/registrations/GET/iotdps-get-operationstatus/?$rid=r4', ' ', 'r4')).toMatchObject({
      status: 400,
      body: { errorCode: 400001, message: 'The operationId topic parameter is required.' },
    });
    expect(await d.request('$dps/registrations/POST/iotdps-whatever/?$rid=r5', '{}', 'r5')).toMatchObject({
      status: 404,
      body: { errorCode: 404001 },
    });
    const notUtf8 = Buffer.concat([
      Buffer.from('{"registrationId":"hashed-raw-mqtt","payload":{"name":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}}'),
    ]);
    expect(await d.request(REGISTER('r7'), notUtf8, 'r7')).toMatchObject({
      status: 400,
      body: { errorCode: 400001, message: 'The request body is not valid UTF-8.' },
    });
    const accepted = await d.request(REGISTER('r6'), JSON.stringify({ registrationId: 'hashed-raw-mqtt' }), 'r6');
    expect(accepted.topic).toBe('$dps/registrations/res/202/?$rid=r6&retry-after=0');
    expect(d.client.connected).toBe(true);
  });

  it('answers 401 to a client whose id differs from the username, or whose username is not DPS', async () => {
    const impostor = await device('hashed-raw-a', { clientId: 'hashed-raw-b' });
    await subscribeResponses(impostor);
    expect(
      await impostor.request(REGISTER('x'), JSON.stringify({ registrationId: 'hashed-raw-a' }), 'x'),
    ).toMatchObject({
      status: 401,
      body: { errorCode: 401000, message: 'Unauthorized' },
    });
    expect(events.at(-1)?.outcome.errorMessage).toMatch(
      /^invalid-registration-id: MQTT client id "hashed-raw-b" differs/,
    );

    // A second of its own: both refusals logged in full, none held for a count line later.
    clock.nextSecond();
    const stranger = await device('hashed-raw-c', { username: 'just-a-user' });
    await subscribeResponses(stranger);
    expect(await stranger.request(REGISTER('y'), '{}', 'y')).toMatchObject({ status: 401 });
    expect(events.at(-1)?.outcome.errorMessage).toMatch(/^malformed: MQTT username "just-a-user"/);
  });

  it('refuses a CONNECT without a username with CONNACK 5, before it takes over the connection of its client id', async () => {
    const owner = await device('hashed-raw-nameless');
    await subscribeResponses(owner);
    // Neither username nor password (MQTT 3.1.1 allows no password without a username), as an X.509
    // device that forgot its username would connect.
    const refused = await connectRawDevice(emulator, { clientId: 'hashed-raw-nameless' }).then(
      (connected) => {
        open.push(connected);
        return undefined;
      },
      (err: Error & { code?: number }) => err,
    );
    expect(refused).toMatchObject({ code: 5, message: 'Connection refused: Not authorized' });
    expect(logs.findLast((l) => l.event === 'mqtt.auth')).toMatchObject({
      registrationId: 'hashed-raw-nameless',
      reason: 'missing-username',
    });
    // The device whose client id it gave is still connected and served.
    expect(owner.client.connected).toBe(true);
    const accepted = await owner.request(
      REGISTER('n1'),
      JSON.stringify({ registrationId: 'hashed-raw-nameless' }),
      'n1',
    );
    expect(accepted.status).toBe(202);
  });

  it('refuses other subscriptions and drops a client publishing outside the DPS topics, and no one else', async () => {
    const snoop = await device('hashed-raw-snoop');
    expect(await subscribeResponses(snoop, '$dps/#')).toBe(128);
    expect(await subscribeResponses(snoop, 'devices/#')).toBe(128);

    const rogue = await device('hashed-raw-rogue');
    rogue.client.publish('devices/hashed-raw-rogue/messages/events/', 'hello', { qos: 1 });
    await rogue.closed;

    const result = await register(emulator, 'hashed-raw-after', groupDeviceKey('hashed', 'hashed-raw-after'));
    expect(result.status).toBe('assigned');
  });

  it('drops a client that publishes on the response topics; nothing reaches or is retained for other devices', async () => {
    const victim = await device('hashed-raw-victim');
    await subscribeResponses(victim);
    const seenByVictim: string[] = [];
    victim.client.on('message', (topic) => seenByVictim.push(topic));

    const forger = await device('hashed-raw-forger');
    const forged = JSON.stringify({ operationId: 'x', status: 'assigned', registrationState: { assignedHub: 'evil' } });
    forger.client.publish('$dps/registrations/res/200/?$rid=forged', forged, { qos: 1, retain: true });
    const dropped = await Promise.race([
      forger.closed.then(() => 'dropped'),
      new Promise((resolve) => setTimeout(() => resolve('still connected'), 5_000)),
    ]);
    expect(dropped).toBe('dropped');

    // A device that subscribes afterwards gets no retained copy either; its own request still works.
    const late = await device('hashed-raw-late');
    const seenByLate: string[] = [];
    late.client.on('message', (topic) => seenByLate.push(topic));
    await subscribeResponses(late);
    await late.request(REGISTER('late'), JSON.stringify({ registrationId: 'hashed-raw-late' }), 'late');
    await victim.request(REGISTER('victim'), JSON.stringify({ registrationId: 'hashed-raw-victim' }), 'victim');
    expect(seenByVictim).toEqual([expect.stringContaining('$rid=victim')]);
    expect(seenByLate).toEqual([expect.stringContaining('$rid=late')]);
  });

  it('answers a $rid of up to MAX_REQUEST_ID_LENGTH characters and leaves a longer one unanswered, with a warning', async () => {
    // The answer echoes the $rid, percent-encoded, in its topic (at most 65,535 bytes). A $rid of
    // 20,000 '€' is 180,000 bytes encoded: the answer went out with its topic length cut to 16
    // bits (a PUBLISH whose topic ran into its payload), so the device read a garbled answer.
    const id = 'hashed-raw-long-rid';
    const register = (rid: string) =>
      mqttPacket.generate({
        cmd: 'publish',
        topic: REGISTER(rid),
        payload: Buffer.from(JSON.stringify({ registrationId: id })),
        qos: 0,
        retain: false,
        dup: false,
      });
    const subscribe = mqttPacket.generate({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: '$dps/registrations/res/#', qos: 0 }],
    });
    const longest = '€'.repeat(MAX_REQUEST_ID_LENGTH);
    const from = logs.length;
    const connection = rawMqttConnection(emulator);
    await connection.write(
      Buffer.concat([dpsConnect(id), subscribe, register('€'.repeat(20_000)), register(longest), PINGREQ]),
    );
    await connection.packets(4);
    await connection.write(DISCONNECT);
    await connection.closed;
    const answer = `$dps/registrations/res/202/?$rid=${encodeURIComponent(longest)}&retry-after=0`;
    // The register's 202 leaves once its operation is committed, after the PINGRESP.
    expect(
      connection.received.map((p) =>
        p.cmd === 'publish' ? (p.topic === answer ? '202 with the $rid' : `publish ${p.topic.length}`) : p.cmd,
      ),
    ).toEqual(['connack', 'suback', 'pingresp', '202 with the $rid']);
    // Nothing but these packets: no answer garbled.
    const whole = connection.received.map((packet) => mqttPacket.generate(packet).length);
    expect(connection.receivedBytes()).toBe(whole.reduce((a, b) => a + b, 0));
    expect(
      logs
        .slice(from)
        .filter((l) => l.level === 'warn' || l.level === 'error')
        .map((l) => [l.level, l.event, l.msg.replace(/^.*?: /, '')]),
    ).toEqual([
      [
        'warn',
        'mqtt.request',
        `a request's $rid of 20000 characters is over ${MAX_REQUEST_ID_LENGTH}; it cannot be answered`,
      ],
    ]);
  });

  it('answers an oversized request with 400001 up to 256 KiB and drops the connection beyond', async () => {
    const d = await device('hashed-raw-big');
    await subscribeResponses(d);
    const body = (size: number) =>
      JSON.stringify({ registrationId: 'hashed-raw-big', payload: { blob: 'x'.repeat(size) } });
    expect(await d.request(REGISTER('big'), body(200 * 1024), 'big')).toMatchObject({
      status: 400,
      body: { errorCode: 400001, message: expect.stringContaining('DPS accepts at most 98304') },
    });
    // Larger packets are never buffered whole: the broker would hold up to 256 MB per packet.
    d.client.publish(REGISTER('huge'), body(4 * 1024 * 1024), { qos: 1 });
    const dropped = await Promise.race([
      d.closed.then(() => 'dropped'),
      new Promise((resolve) => setTimeout(() => resolve('still connected'), 5_000)),
    ]);
    expect(dropped).toBe('dropped');
    const result = await register(emulator, 'hashed-raw-big', groupDeviceKey('hashed', 'hashed-raw-big'));
    expect(result.status).toBe('assigned');
  });

  it('answers every device on its own connection only', async () => {
    const [a, b] = await Promise.all([device('hashed-raw-one'), device('hashed-raw-two')]);
    if (!a || !b) throw new Error('not connected');
    await Promise.all([subscribeResponses(a), subscribeResponses(b)]);
    const seenByB: string[] = [];
    b.client.on('message', (topic) => seenByB.push(topic));
    await a.request(REGISTER('only-a'), JSON.stringify({ registrationId: 'hashed-raw-one' }), 'only-a');
    await b.request(REGISTER('only-b'), JSON.stringify({ registrationId: 'hashed-raw-two' }), 'only-b');
    expect(seenByB).toEqual([expect.stringContaining('$rid=only-b')]);
  });

  it('closes the older connection when a device connects again with the same client id, and serves the new one', async () => {
    const old = await device('hashed-raw-again');
    const again = await device('hashed-raw-again');
    await old.closed;
    await subscribeResponses(again);
    const accepted = await again.request(
      REGISTER('again'),
      JSON.stringify({ registrationId: 'hashed-raw-again' }),
      'again',
    );
    expect(accepted.status).toBe(202);
  });

  it('answers a device subscribed at QoS 0 at QoS 0 (MQTT 3.1.1: at most the granted QoS)', async () => {
    const d = await device('hashed-raw-qos0');
    const granted = await new Promise<number>((resolve, reject) =>
      d.client.subscribe('$dps/registrations/res/#', { qos: 0 }, (err, result) =>
        err ? reject(err) : resolve(result[0]?.qos ?? -1),
      ),
    );
    expect(granted).toBe(0);
    const delivered = new Promise<{ topic: string; qos: number }>((resolve) =>
      d.client.on('message', (topic, _payload, packet) => resolve({ topic, qos: packet.qos })),
    );
    d.client.publish(REGISTER('q0'), JSON.stringify({ registrationId: 'hashed-raw-qos0' }), { qos: 1 });
    expect(await delivered).toMatchObject({
      topic: expect.stringMatching(/^\$dps\/registrations\/res\/\d+\/\?\$rid=q0/),
      qos: 0,
    });
  });

  it('answers an MQTT 5 CONNECT with CONNACK 1 before it closes, and writes what it answered before a violation', async () => {
    const port = emulator.endpoints.mqtt.port;
    // MQTT 3.1.1 [MQTT-3.1.2-2]: CONNACK 1 (unacceptable protocol version), then the close.
    const v5 = mqttPacket.generate({ cmd: 'connect', clientId: 'hashed-raw-v5', protocolVersion: 5, keepalive: 0 });
    expect([...(await rawTlsExchange(emulator, port, v5))]).toEqual([0x20, 0x02, 0x00, 0x01]);

    // One write: CONNECT, SUBSCRIBE, then a PUBLISH outside the request topics, which closes the
    // connection; the CONNACK and SUBACK answered before it still arrive.
    const id = 'hashed-raw-violation';
    const bytes = Buffer.concat([connectAndSubscribe(id), PUBLISH_OUTSIDE]);
    const received: mqttPacket.Packet[] = [];
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    parser.on('packet', (packet) => received.push(packet));
    parser.parse(await rawTlsExchange(emulator, port, bytes));
    expect(received.map((packet) => packet.cmd)).toEqual(['connack', 'suback']);
  });

  it('closes a client that sends a second CONNECT on its connection', async () => {
    const d = await device('hashed-raw-reconnect');
    (d.client as unknown as { stream: { write(b: Buffer): void } }).stream.write(
      mqttPacket.generate({
        cmd: 'connect',
        clientId: 'hashed-raw-reconnect',
        protocolVersion: 4,
        clean: true,
        keepalive: 0,
      }),
    );
    await d.closed;
  });

  it('writes the answers to the packets before a malformed one, answers nothing after it, and closes', async () => {
    // One write: CONNECT, SUBSCRIBE, PINGREQ, a malformed packet, another PINGREQ.
    const oneRead = rawMqttConnection(emulator);
    await oneRead.write(Buffer.concat([connectAndSubscribe('hashed-raw-malformed'), PINGREQ, MALFORMED, PINGREQ]));
    await oneRead.closed;
    expect(oneRead.received.map((packet) => packet.cmd)).toEqual(['connack', 'suback', 'pingresp']);

    // The bad packet read with the end of the one before it (each connection's own parser, which
    // keeps the part of a packet a read ends in): the PINGRESP of that read arrives too.
    const split = rawMqttConnection(emulator);
    await split.write(Buffer.concat([connectAndSubscribe('hashed-raw-malformed-split'), PINGREQ.subarray(0, 1)]));
    await split.packets(2);
    await split.write(Buffer.concat([PINGREQ.subarray(1), MALFORMED, PINGREQ]));
    await split.closed;
    expect(split.received.map((packet) => packet.cmd)).toEqual(['connack', 'suback', 'pingresp']);

    const result = await register(emulator, 'hashed-raw-malformed', groupDeviceKey('hashed', 'hashed-raw-malformed'));
    expect(result.status).toBe('assigned');
  });

  it('serves a CONNECT that comes in pieces (the listener shared with the hubs reads it whole first)', async () => {
    // Each piece in a TLS record of its own, so a read of its own: the first read holds no whole packet.
    const bytes = connectAndSubscribe('hashed-raw-connect-pieces');
    for (const cuts of [[1], [2, 30], [bytes.length - 1]]) {
      const pieces = rawMqttConnection(emulator);
      let from = 0;
      for (const cut of [...cuts, bytes.length]) {
        await pieces.write(bytes.subarray(from, cut));
        from = cut;
      }
      await pieces.packets(2);
      await pieces.write(DISCONNECT);
      await pieces.closed;
      expect(pieces.received.map((packet) => packet.cmd)).toEqual(['connack', 'suback']);
    }
  });

  it('serves the packets read before an oversized one, then closes without reading it', async () => {
    // A PUBLISH announcing 4 MiB (over MAX_MQTT_PACKET_BYTES) in the same write as the packets
    // before it, with the start of its body: the packets before it are answered, it is not read.
    const huge = Buffer.concat([Buffer.from([0x32, 0x80, 0x80, 0x80, 0x02]), Buffer.alloc(1024, 0x61)]);
    const connection = rawMqttConnection(emulator);
    await connection.write(Buffer.concat([connectAndSubscribe('hashed-raw-oversized'), PINGREQ, huge, PINGREQ]));
    await connection.closed;
    expect(connection.received.map((packet) => packet.cmd)).toEqual(['connack', 'suback', 'pingresp']);
  });

  it('closes a connection after a DISCONNECT or a refused CONNECT even when the peer keeps its side open and goes on writing', async () => {
    // After a DISCONNECT the connection is ended, not destroyed (what was answered before it must
    // arrive); a peer that then neither closes nor stops writing (which keeps the idle timeout
    // from firing) is closed all the same, and what it writes is not answered. A CONNECT refused
    // with CONNACK 1 (protocol level 5) too.
    const disconnect = rawMqttConnection(emulator, { halfOpen: true });
    await disconnect.write(Buffer.concat([connectAndSubscribe('hashed-raw-holds-disconnect'), DISCONNECT]));
    const refused = rawMqttConnection(emulator, { halfOpen: true });
    await refused.write(mqttPacket.generate({ cmd: 'connect', clientId: 'hashed-raw-holds-v5', protocolVersion: 5 }));
    await Promise.all([disconnect.closed, refused.closed]);
    expect(disconnect.received.map((packet) => packet.cmd)).toEqual(['connack', 'suback']);
    expect(refused.received).toMatchObject([{ cmd: 'connack', returnCode: 1 }]);
  });

  it('closes a connection after a violation even when the peer keeps its side open and goes on writing', async () => {
    // A PUBLISH outside the request topics, a malformed packet, an oversized one: each ends the
    // connection after its answers; a peer that neither closes nor stops writing (which keeps the
    // idle timeout from firing) is closed all the same.
    const violations = {
      outside: PUBLISH_OUTSIDE,
      malformed: MALFORMED,
      oversized: Buffer.from([0x30, 0x80, 0x80, 0x80, 0x02]),
    };
    const closed = await Promise.all(
      Object.entries(violations).map(async ([name, violation]) => {
        const connection = rawMqttConnection(emulator, { halfOpen: true });
        await connection.write(Buffer.concat([connectAndSubscribe(`hashed-raw-holds-${name}`), violation]));
        await connection.closed;
        return { name, received: connection.received.map((packet) => packet.cmd) };
      }),
    );
    expect(closed).toEqual(Object.keys(violations).map((name) => ({ name, received: ['connack', 'suback'] })));
  });
});
