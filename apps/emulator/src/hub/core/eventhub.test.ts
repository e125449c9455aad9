import { describe, expect, it } from 'vitest';
import {
  audienceEntity,
  EMPTY_PARTITION,
  EVENT_HUB_PARTITION_COUNT,
  eventHubName,
  eventMessage,
  grantedUntil,
  parseEventHubAddress,
  parseEventPosition,
  parseSasRootUser,
  partitionInfo,
  partitionNumber,
  partitionOf,
  resourceCovers,
  type StoredHubEvent,
} from './eventhub.js';
import { eventHubReaderPolicy } from './eventhub-service.js';
import type { HubPolicy } from './hub-service.js';

describe('the built-in endpoint, pure parts', () => {
  it('names a hub by its first label and spreads devices over four partitions, each always on one', () => {
    expect(eventHubName('hub-a.azure-devices.net')).toBe('hub-a');
    const seen = new Set<number>();
    for (let i = 0; i < 64; i++) {
      const partition = partitionOf(`device-${i}`);
      expect(partition).toBe(partitionOf(`device-${i}`));
      expect(partition).toBeGreaterThanOrEqual(0);
      expect(partition).toBeLessThan(EVENT_HUB_PARTITION_COUNT);
      seen.add(partition);
    }
    expect(seen.size).toBe(EVENT_HUB_PARTITION_COUNT);
    // Device ids are case-sensitive: another id, perhaps another partition, but always the same one.
    expect(partitionOf('Device-1')).toBe(partitionOf('Device-1'));
  });

  it('reads receiver and management addresses', () => {
    expect(parseEventHubAddress('hub-a/ConsumerGroups/$default/Partitions/2')).toEqual({
      kind: 'partition',
      entity: 'hub-a',
      consumerGroup: '$default',
      partition: '2',
    });
    expect(parseEventHubAddress('amqps://localhost:5671/hub-a/consumergroups/$Default/partitions/0')).toMatchObject({
      kind: 'partition',
      partition: '0',
    });
    expect(parseEventHubAddress('$management')).toEqual({ kind: 'management' });
    expect(parseEventHubAddress('hub-a/Partitions/0')).toEqual({ kind: 'other', entity: 'hub-a' });
    expect(parseEventHubAddress('')).toBeUndefined();
    expect(partitionNumber('3')).toBe(3);
    for (const bad of ['4', '-1', '01', '1.0', 'x', '']) expect(partitionNumber(bad)).toBeUndefined();
  });

  it('parses the start positions @azure/event-hubs sends, and says what is wrong with others', () => {
    const at = (filter: unknown) => parseEventPosition(filter);
    expect(at("amqp.annotation.x-opt-offset > '-1'")).toEqual({ ok: true, position: { kind: 'earliest' } });
    expect(at("amqp.annotation.x-opt-offset > '@latest'")).toEqual({ ok: true, position: { kind: 'latest' } });
    expect(at(undefined)).toEqual({ ok: true, position: { kind: 'latest' } });
    expect(at("amqp.annotation.x-opt-offset >= '120'")).toEqual({
      ok: true,
      position: { kind: 'offset', offset: 120, inclusive: true },
    });
    expect(at("amqp.annotation.x-opt-sequence-number > '7'")).toEqual({
      ok: true,
      position: { kind: 'sequence', sequenceNumber: 7, inclusive: false },
    });
    expect(at("amqp.annotation.x-opt-enqueued-time > '1700000000000'")).toEqual({
      ok: true,
      position: { kind: 'enqueued', enqueuedMs: 1700000000000 },
    });
    for (const bad of [
      "amqp.annotation.x-opt-offset < '1'",
      "amqp.annotation.x-opt-offset > 'abc'",
      "amqp.annotation.x-opt-enqueued-time > 'yesterday'",
      'DROP TABLE',
      42,
      `amqp.annotation.x-opt-offset > '${'1'.repeat(300)}'`,
    ]) {
      expect(at(bad)).toMatchObject({ ok: false, error: expect.any(String) });
    }
  });

  it("repeats a bad filter's value clipped and with its control characters escaped (it is logged)", () => {
    const forged = parseEventPosition('amqp.annotation.x-opt-offset > \'x\n{"level":"error"}\r\u0007\'');
    expect(forged).toEqual({
      ok: false,
      error: 'The offset \'x\\u000a{"level":"error"}\\u000d\\u0007\' is not a number.',
    });
    const long = parseEventPosition(`amqp.annotation.x-opt-enqueued-time > '${'y'.repeat(200)}'`);
    expect(long).toEqual({
      ok: false,
      error: `The enqueued time '${'y'.repeat(32)}…(168 more characters)' is not milliseconds since 1970.`,
    });
    const sequence = parseEventPosition("amqp.annotation.x-opt-sequence-number > '1\t2'");
    expect(sequence).toMatchObject({ ok: false, error: "The sequence number '1\\u00092' is not a number." });
  });

  it('shapes an event as IoT Hub forwards it', () => {
    const event: StoredHubEvent = {
      hub: 'hub-a.azure-devices.net',
      partition: 1,
      sequenceNumber: 5,
      offset: 640,
      enqueuedMs: 1_700_000_000_000,
      deviceId: 'dev-1',
      authenticationType: 'sas',
      generationId: '638000000000000001',
      body: Buffer.from('{"t":1}'),
      properties: {
        '$.mid': 'm-1',
        '$.cid': 'c-1',
        '$.ct': 'application/json',
        '$.ce': 'utf-8',
        '$.uid': 'user',
        '$.cdid': 'dev-1',
        '$.sub': 'thermostat1',
        colour: 'red',
      },
    };
    const message = eventMessage(event);
    expect(message.properties).toEqual({
      message_id: 'm-1',
      correlation_id: 'c-1',
      content_type: 'application/json',
      content_encoding: 'utf-8',
      user_id: Buffer.from('user'),
    });
    expect(message.application_properties).toEqual({ colour: 'red', '$.cdid': 'dev-1' });
    expect(message.message_annotations).toEqual({
      'iothub-connection-device-id': 'dev-1',
      'iothub-connection-auth-method': '{"scope":"device","type":"sas","issuer":"iothub","acceptingIpFilterRule":null}',
      'iothub-connection-auth-generation-id': '638000000000000001',
      'iothub-enqueuedtime': new Date(1_700_000_000_000),
      'iothub-message-source': 'Telemetry',
      'dt-subject': 'thermostat1',
      'x-opt-sequence-number': 5,
      'x-opt-offset': '640',
      'x-opt-enqueued-time': new Date(1_700_000_000_000),
    });
    expect(
      JSON.parse(
        eventMessage({ ...event, authenticationType: 'selfSigned' }).message_annotations[
          'iothub-connection-auth-method'
        ] as string,
      ),
    ).toMatchObject({ type: 'x509Certificate' });
  });

  it("annotates a module's message with its module id and the module scope", () => {
    const annotations = eventMessage({
      hub: 'h',
      partition: 0,
      sequenceNumber: 0,
      offset: 0,
      enqueuedMs: 0,
      deviceId: 'edge-1',
      moduleId: 'sensor',
      authenticationType: 'sas',
      generationId: '1',
      body: Buffer.from('x'),
      properties: { a: '1' },
    }).message_annotations;
    expect(annotations).toMatchObject({
      'iothub-connection-device-id': 'edge-1',
      'iothub-connection-module-id': 'sensor',
    });
    expect(JSON.parse(annotations['iothub-connection-auth-method'] as string)).toMatchObject({ scope: 'module' });
  });

  it("answers an empty partition's properties as Event Hubs does", () => {
    expect(partitionInfo('hub-a', 3, EMPTY_PARTITION)).toEqual({
      name: 'hub-a',
      type: 'com.microsoft:partition',
      partition: '3',
      begin_sequence_number: 0,
      last_enqueued_sequence_number: -1,
      last_enqueued_offset: '-1',
      last_enqueued_time_utc: new Date(0),
      is_partition_empty: true,
    });
  });

  it("reads IoT Hub's {policy}@sas.root.{hub name} SASL username, and nothing else", () => {
    expect(parseSasRootUser('iothubowner@sas.root.hub-a')).toEqual({ policy: 'iothubowner', hubName: 'hub-a' });
    for (const other of ['0ne00000A0A/registrations/dev', 'iothubowner@sas.root.', '@sas.root.hub-a', 'x@sas.root.a.b'])
      expect(parseSasRootUser(other)).toBeUndefined();
  });

  it("knows until when a connection's put-tokens let a partition's link read (the latest covering its address)", () => {
    const partition0 = 'hub-a/ConsumerGroups/$Default/Partitions/0';
    const grant = (audience: string, expiresAt: number, hub = 'hub-a.azure-devices.net') => ({
      hub,
      audience,
      expiresAt,
    });
    const hubA = 'hub-a.azure-devices.net';
    expect(grantedUntil([], hubA, partition0)).toBeUndefined();
    expect(grantedUntil([grant(`sb://localhost:5671/${partition0}`, 10)], hubA, partition0)).toBe(10);
    expect(
      grantedUntil(
        [grant(`sb://localhost:5671/${partition0}`, 10), grant('sb://localhost:5671/hub-a', 20)],
        hubA,
        partition0,
      ),
    ).toBe(20);
    // Another partition's token, another hub's, a path that is not above by segment: none.
    expect(
      grantedUntil([grant('sb://localhost:5671/hub-a/ConsumerGroups/$Default/Partitions/1', 10)], hubA, partition0),
    ).toBeUndefined();
    expect(
      grantedUntil([grant('sb://localhost:5671/hub-a', 10, 'hub-b.azure-devices.net')], hubA, partition0),
    ).toBeUndefined();
    expect(grantedUntil([grant('sb://localhost:5671/hub-a/Consumer', 10)], hubA, partition0)).toBeUndefined();
  });

  it('grants an audience to a token for it or for a path above it', () => {
    const audience = 'sb://localhost:5671/hub-a/ConsumerGroups/$default/Partitions/0';
    expect(resourceCovers('sb://localhost:5671/hub-a', audience)).toBe(true);
    expect(resourceCovers('sb://LOCALHOST:5671/hub-a/', audience)).toBe(true);
    expect(resourceCovers(audience, audience)).toBe(true);
    expect(resourceCovers('sb://localhost:5671/hub-ab', audience)).toBe(false);
    expect(resourceCovers('sb://localhost:5671/hub-b', audience)).toBe(false);
    expect(resourceCovers('', audience)).toBe(false);
    expect(audienceEntity(audience)).toBe('hub-a');
    expect(audienceEntity('sb://localhost:5671/')).toBeUndefined();
    expect(audienceEntity('hub-a.azure-devices.net/devices/x')).toBeUndefined();
  });

  it("names in a connection string only a policy with ServiceConnect, iothubowner's first", () => {
    const policy = (keyName: string, rights: HubPolicy['rights']): HubPolicy => ({ keyName, primaryKey: 'k', rights });
    const registry = policy('iothubowner', ['RegistryRead', 'RegistryWrite']);
    const device = policy('device', ['DeviceConnect']);
    const service = policy('service', ['ServiceConnect']);
    const owner = policy('iothubowner', ['RegistryRead', 'ServiceConnect']);
    expect(eventHubReaderPolicy([registry, device, service])).toBe(service);
    expect(eventHubReaderPolicy([service, owner])).toBe(owner);
    expect(eventHubReaderPolicy([registry, device])).toBeUndefined();
  });
});
