import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import './mqtt.js';

interface MqttPacket {
  writeToStream: { cacheNumbers: boolean };
  generate(packet: Record<string, unknown>): Buffer;
}

/** mqtt-packet as the SDK's mqtt.js loads it. */
function sdkMqttPacket(): MqttPacket {
  let from = import.meta.url;
  for (const name of ['azure-iot-mqtt-base', 'mqtt']) from = createRequire(from).resolve(name);
  return createRequire(from)('mqtt-packet') as MqttPacket;
}

describe('disableMqttNumberCache', () => {
  it("turns off the number cache of the mqtt-packet that the SDK's mqtt.js writes with", () => {
    expect(sdkMqttPacket().writeToStream.cacheNumbers).toBe(false);
  });

  it('leaves the packets as they were: packet ids and lengths still encoded big-endian', () => {
    const bytes = sdkMqttPacket().generate({
      cmd: 'publish',
      topic: '$dps/registrations/PUT/iotdps-register/?$rid=1',
      payload: Buffer.from('{}'),
      qos: 1,
      messageId: 300,
    });
    const topicLength = bytes.readUInt16BE(2);
    expect(topicLength).toBe('$dps/registrations/PUT/iotdps-register/?$rid=1'.length);
    expect(bytes.readUInt16BE(4 + topicLength)).toBe(300);
  });
});
