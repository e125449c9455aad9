// The hub's MQTT endpoint fed raw bytes over TLS: several packets in one write, as a client
// pipelining them sends, with a DISCONNECT, a malformed or an oversized packet after them. IoT Hub,
// as any MQTT 3.1.1 server, answers each packet in order and closes only after the packets before
// the DISCONNECT or the violation are answered [MQTT-4.8.0-1]. The SDK never writes these, so no
// SDK client here; the devices are created through azure-iothub's Registry.
import mqttPacket from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_A, ROGUE_HUB } from '../testing/fixtures.js';
import { createDeviceKey, deviceClient, nextHubEvent, registryClient } from '../testing/hub-sdk.js';
import {
  DISCONNECT,
  hubConnect,
  MALFORMED,
  PINGREQ,
  rawMqttConnection,
  SUBSCRIBE_TWIN,
  TWIN_GET,
} from '../testing/mqtt-bytes.js';
import { closeOf, openMqttWebSocket, openWebSocket, silentPeerEnding } from '../testing/raw-websocket.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from '../testing/test-bed.js';

let bed: TestBedWithWebhook;
beforeAll(async () => {
  bed = await startTestBedWithWebhook();
});
afterAll(async () => {
  await bed?.close();
});

/** A device of HUB_A created through the registry, and its CONNECT as the SDK would write it. */
async function device(id: string, keepalive = 0): Promise<Buffer> {
  const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
  return hubConnect({ hub: HUB_A, deviceId: id, key, keepalive });
}

const telemetry = (id: string) =>
  mqttPacket.generate({
    cmd: 'publish',
    topic: `devices/${id}/messages/events/`,
    payload: Buffer.from('{"t":21}'),
    qos: 1,
    messageId: 2,
    retain: false,
    dup: false,
  });
/** A PUBLISH where a device may not publish: IoT Hub closes the connection for it. */
const PUBLISH_OUTSIDE = mqttPacket.generate({
  cmd: 'publish',
  topic: 'devices/someone-else/messages/events/',
  payload: Buffer.from('{}'),
  qos: 0,
  retain: false,
  dup: false,
});
/** The header of a PUBLISH announcing 4 MiB (over the 256 KiB bound) and the start of its body. */
const OVERSIZED = Buffer.concat([Buffer.from([0x32, 0x80, 0x80, 0x80, 0x02]), Buffer.alloc(1024, 0x61)]);

/** What arrived, one line a packet: its type and what tells it apart. */
function summary(packets: mqttPacket.Packet[]): string[] {
  return packets.map((packet) => {
    if (packet.cmd === 'connack') return `connack ${packet.returnCode}`;
    if (packet.cmd === 'suback') return `suback ${packet.messageId} ${packet.granted.join(',')}`;
    if (packet.cmd === 'puback') return `puback ${packet.messageId}`;
    if (packet.cmd === 'publish') return `publish ${packet.topic}`;
    return packet.cmd;
  });
}

describe('the hub over MQTT: packets written together (raw TLS)', () => {
  it('serves a CONNECT that comes in pieces on the listener it shares with DPS', async () => {
    const connect = await device('raw-connect-pieces');
    for (const cut of [1, 20, connect.length - 1]) {
      const pieces = rawMqttConnection(bed.emulator);
      // A TLS record, so a read, each: the first read holds no whole packet.
      await pieces.write(connect.subarray(0, cut));
      await pieces.write(Buffer.concat([connect.subarray(cut), SUBSCRIBE_TWIN]));
      await pieces.packets(2);
      await pieces.write(DISCONNECT);
      await pieces.closed;
      expect(summary(pieces.received)).toEqual(['connack 0', 'suback 1 0']);
    }
  });

  it('answers each packet written before a DISCONNECT, in order, then closes the connection', async () => {
    const id = 'raw-disconnect';
    const connect = await device(id);
    const stored = nextHubEvent(bed.emulator, (e) => e.kind === 'telemetry' && e.deviceId === id);
    const disconnected = nextHubEvent(bed.emulator, (e) => e.kind === 'disconnected' && e.deviceId === id);
    const connection = rawMqttConnection(bed.emulator);
    await connection.write(Buffer.concat([connect, SUBSCRIBE_TWIN, TWIN_GET, telemetry(id), PINGREQ, DISCONNECT]));
    await connection.closed;
    expect(summary(connection.received)).toEqual([
      'connack 0',
      'suback 1 0',
      'publish $iothub/twin/res/200/?$rid=7',
      'puback 2',
      'pingresp',
    ]);
    expect(await stored).toMatchObject({ body: '{"t":21}' });
    await disconnected;
  });

  it('answers a twin request of a device that never subscribed to $iothub/twin/res/# (a choice: see docs/hubs.md, "MQTT QoS")', async () => {
    // IoT Hub's documentation has the device subscribe first ("First, a device subscribes to
    // $iothub/twin/res/#, to receive the operation's responses", iot-mqtt-connect-to-iot-hub) and
    // says nothing of a device that does not; the service has been seen delivering to a connection
    // that had subscribed to nothing, keeping a device's subscriptions across its connections for a
    // while (azure-iot-sdk-java#777). The emulated hub answers every request.
    const connection = rawMqttConnection(bed.emulator);
    await connection.write(Buffer.concat([await device('raw-unsubscribed-get'), TWIN_GET, PINGREQ, DISCONNECT]));
    await connection.closed;
    expect(summary(connection.received)).toEqual(['connack 0', 'publish $iothub/twin/res/200/?$rid=7', 'pingresp']);
  });

  it('connects a device whose username has no api-version, fails its twin operations with 400, and takes its telemetry', async () => {
    // IoT Hub connects such a device, which sends and receives (azure-docs#16306), but answers its
    // twin operations 400 (andriyadi/AzureIoTHubMQTTClient#5). A username with any api-version is
    // served in full (IoT Hub's answer to an unknown version over MQTT is not documented).
    const reported = mqttPacket.generate({
      cmd: 'publish',
      topic: '$iothub/twin/PATCH/properties/reported/?$rid=8',
      payload: Buffer.from('{"a":1}'),
      qos: 0,
      retain: false,
      dup: false,
    });
    const message =
      'twin operations need an api-version in the CONNECT username ({hub}/{deviceId}/?api-version=2021-04-12)';
    for (const [index, tail] of ['', '/', '/?DeviceClientType=raw%2F1'].entries()) {
      const id = `raw-unversioned-${index}`;
      const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
      const stored = nextHubEvent(bed.emulator, (e) => e.kind === 'telemetry' && e.deviceId === id);
      const connection = rawMqttConnection(bed.emulator);
      const connect = hubConnect({ hub: HUB_A, deviceId: id, key, usernameTail: tail });
      await connection.write(
        Buffer.concat([connect, SUBSCRIBE_TWIN, TWIN_GET, reported, telemetry(id), PINGREQ, DISCONNECT]),
      );
      await connection.closed;
      expect(summary(connection.received), tail).toEqual([
        'connack 0',
        'suback 1 0',
        'publish $iothub/twin/res/400/?$rid=7',
        'publish $iothub/twin/res/400/?$rid=8',
        'puback 2',
        'pingresp',
      ]);
      for (const answer of connection.received.filter((p) => p.cmd === 'publish')) {
        expect(JSON.parse(String((answer as mqttPacket.IPublishPacket).payload))).toMatchObject({
          errorCode: 400004,
          message,
        });
      }
      expect(await stored).toMatchObject({ body: '{"t":21}' });
    }
    const id = 'raw-any-version';
    const key = await createDeviceKey(registryClient(bed.emulator, HUB_A), id);
    const connection = rawMqttConnection(bed.emulator);
    const connect = hubConnect({ hub: HUB_A, deviceId: id, key, usernameTail: '/?api-version=whatever' });
    await connection.write(Buffer.concat([connect, TWIN_GET, PINGREQ, DISCONNECT]));
    await connection.closed;
    expect(summary(connection.received)).toEqual(['connack 0', 'publish $iothub/twin/res/200/?$rid=7', 'pingresp']);
  });

  it('answers the packets before a malformed one in the same read, nothing after it, and closes', async () => {
    const oneRead = rawMqttConnection(bed.emulator);
    await oneRead.write(Buffer.concat([await device('raw-malformed'), SUBSCRIBE_TWIN, PINGREQ, MALFORMED, PINGREQ]));
    await oneRead.closed;
    expect(summary(oneRead.received)).toEqual(['connack 0', 'suback 1 0', 'pingresp']);

    // The malformed packet read with the end of the one before it.
    const split = rawMqttConnection(bed.emulator);
    await split.write(Buffer.concat([await device('raw-malformed-split'), SUBSCRIBE_TWIN, PINGREQ.subarray(0, 1)]));
    await split.packets(2);
    await split.write(Buffer.concat([PINGREQ.subarray(1), MALFORMED, PINGREQ]));
    await split.closed;
    expect(summary(split.received)).toEqual(['connack 0', 'suback 1 0', 'pingresp']);
  });

  it('answers the packets read before an oversized one, then closes without reading it', async () => {
    const connection = rawMqttConnection(bed.emulator);
    await connection.write(Buffer.concat([await device('raw-oversized'), SUBSCRIBE_TWIN, PINGREQ, OVERSIZED, PINGREQ]));
    await connection.closed;
    expect(summary(connection.received)).toEqual(['connack 0', 'suback 1 0', 'pingresp']);

    // The hub goes on serving: the same device over the official SDK.
    const key = (await registryClient(bed.emulator, HUB_A).get('raw-oversized')).responseBody.authentication
      ?.symmetricKey?.primaryKey as string;
    const client = await deviceClient(bed.emulator, { hub: HUB_A, deviceId: 'raw-oversized', key });
    await client.open();
    try {
      expect((await client.getTwin()).properties.reported).toBeDefined();
    } finally {
      await client.close();
    }
  });

  it('closes the connection after a DISCONNECT or a violation even when the peer keeps its side open and goes on writing', async () => {
    // After its answers the hub ends the connection; a peer that neither closes nor stops writing
    // (which keeps the keepalive and idle timeouts from firing) is closed all the same.
    const endings = { disconnect: DISCONNECT, outside: PUBLISH_OUTSIDE, malformed: MALFORMED, oversized: OVERSIZED };
    const closed = await Promise.all(
      Object.entries(endings).map(async ([name, ending]) => {
        const connect = await device(`raw-holds-${name}`);
        const connection = rawMqttConnection(bed.emulator, { halfOpen: true });
        await connection.write(Buffer.concat([connect, SUBSCRIBE_TWIN, ending]));
        await connection.closed;
        return { name, received: summary(connection.received) };
      }),
    );
    expect(closed).toEqual(Object.keys(endings).map((name) => ({ name, received: ['connack 0', 'suback 1 0'] })));
  });
});

describe('the hub over MQTT over WebSockets: how a session ends (raw ws)', () => {
  it('closes with 1000 after a DISCONNECT or a refused CONNECT, 1002 after a violation, 1009 after an oversized packet, the answers before each delivered', async () => {
    // One WebSocket message each: CONNECT and SUBSCRIBE, then what ends the session. The codes are
    // DPS's over WebSockets (transport/websocket-stream.ts says why).
    const endings = { disconnect: DISCONNECT, outside: PUBLISH_OUTSIDE, malformed: MALFORMED, oversized: OVERSIZED };
    const closes: Record<string, { code: number; reason: string; received: string[] }> = {};
    for (const [name, ending] of Object.entries(endings)) {
      const connect = await device(`ws-ends-${name}`);
      const { ws, received, closed } = await openMqttWebSocket(bed.emulator);
      ws.send(Buffer.concat([connect, SUBSCRIBE_TWIN, ending]));
      closes[name] = { ...(await closed), received: summary(received) };
    }
    // A CONNECT for a hub the emulator does not serve: CONNACK 5 (as IoT Hub refuses bad
    // credentials), then an orderly close.
    const unknown = await openWebSocket(bed.emulator, ['mqtt']);
    if (unknown.kind !== 'open') throw new Error('not upgraded');
    const refusal: Buffer[] = [];
    unknown.ws.on('message', (data: Buffer) => refusal.push(data));
    const refused = closeOf(unknown.ws);
    unknown.ws.send(
      mqttPacket.generate({
        cmd: 'connect',
        clientId: 'ws-unknown-hub',
        username: `${ROGUE_HUB}/ws-unknown-hub/?api-version=2021-04-12`,
        password: Buffer.from('SharedAccessSignature sr=x&sig=y&se=1'),
        protocolVersion: 4,
        clean: true,
        keepalive: 0,
      }),
    );
    closes.unknownHub = { ...(await refused), received: [Buffer.concat(refusal).toString('hex')] };

    const answered = ['connack 0', 'suback 1 0'];
    expect(closes).toEqual({
      disconnect: { code: 1000, reason: '', received: answered },
      outside: { code: 1002, reason: 'MQTT protocol violation', received: answered },
      malformed: { code: 1002, reason: 'MQTT protocol violation', received: answered },
      oversized: { code: 1009, reason: 'MQTT packet too large', received: answered },
      unknownHub: { code: 1000, reason: '', received: ['20020005'] },
    });
  });

  it('closes with 1001 when the device sends nothing for 1.5 × its keepalive', async () => {
    // Keepalive 1 s: closed once 1.5 s pass without a packet (aedes's timer), however long the
    // test waits. Not a violation (1002): websocket-stream.ts says why 1001.
    const { ws, received, closed } = await openMqttWebSocket(bed.emulator);
    ws.send(Buffer.concat([await device('ws-keepalive', 1), SUBSCRIBE_TWIN]));
    expect({ ...(await closed), received: summary(received) }).toEqual({
      code: 1001,
      reason: 'MQTT keepalive timeout',
      received: ['connack 0', 'suback 1 0'],
    });
  });

  it('destroys the connection of a device that never answers the close frame REFUSED_PEER_GRACE_MS after the close, not before', async () => {
    // As websocket.test's DPS case: the client never answers the close frame nor writes again;
    // timers faked from before the close, I/O real. After a violation and after a DISCONNECT.
    const endings = { malformed: MALFORMED, disconnect: DISCONNECT };
    const seen: Record<string, unknown> = {};
    for (const [name, ending] of Object.entries(endings)) {
      const connect = await device(`ws-silent-${name}`);
      seen[name] = await silentPeerEnding(bed.emulator, Buffer.concat([connect, SUBSCRIBE_TWIN, ending]));
    }
    const gone = { goneAtClose: false, goneAtGraceLess1ms: false, goneAtGrace: true };
    expect(seen).toEqual({
      malformed: { code: 1002, reason: 'MQTT protocol violation', ...gone },
      disconnect: { code: 1000, reason: '', ...gone },
    });
  });
});
