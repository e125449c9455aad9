import mqttPacket from 'mqtt-packet';
import { describe, expect, it } from 'vitest';
import { encodeServerPacket } from './mqtt-encode.js';

const same = (packet: mqttPacket.Packet) =>
  expect(encodeServerPacket(packet).toString('hex')).toBe(mqttPacket.generate(packet).toString('hex'));

describe('encodeServerPacket', () => {
  it('encodes what a DPS session sends byte for byte as mqtt-packet does', () => {
    for (const returnCode of [0, 1, 5]) {
      for (const sessionPresent of [false, true]) same({ cmd: 'connack', returnCode, sessionPresent });
    }
    for (const messageId of [1, 2, 255, 256, 4097, 65535]) {
      same({ cmd: 'puback', messageId });
      same({ cmd: 'pubrec', messageId });
      same({ cmd: 'pubcomp', messageId });
      same({ cmd: 'unsuback', messageId, granted: [] } as mqttPacket.Packet);
      same({ cmd: 'suback', messageId, granted: [1] });
      same({ cmd: 'suback', messageId, granted: [0, 1, 0x80, 1] });
    }
    same({ cmd: 'suback', messageId: 7, granted: Array.from({ length: 200 }, (_, i) => (i % 3 === 2 ? 0x80 : i % 2)) });
    same({ cmd: 'pingresp' });
  });

  it('encodes PUBLISH answers of every size class, topic and payload as string or bytes', () => {
    const topic = '$dps/registrations/res/202/?$rid=%E2%82%AC-1&retry-after=3';
    // Remaining lengths on both sides of each length-byte boundary (127/128, 16383/16384, 2097151/2097152).
    const sizes = [0, 1, 60, 61, 62, 100, 16_300, 16_320, 16_321, 16_330, 70_000, 2_097_080, 2_097_090];
    for (const size of sizes) {
      for (const qos of [0, 1] as const) {
        const text = 'a'.repeat(size);
        for (const payload of [text, Buffer.from(text)]) {
          same({ cmd: 'publish', topic, payload, qos, messageId: qos ? 513 : undefined, retain: false, dup: false });
        }
      }
    }
    same({ cmd: 'publish', topic: 'a/€/b', payload: '{"é":"ü"}', qos: 1, messageId: 65535, retain: true, dup: true });
  });

  it('leaves other packets to mqtt-packet', () => {
    same({ cmd: 'disconnect' });
  });
});
