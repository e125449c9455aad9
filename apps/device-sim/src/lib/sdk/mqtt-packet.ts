import { createRequire } from 'node:module';

/** The one setting of mqtt-packet's writer that device-sim touches (documented in its README). */
interface MqttPacketWriter {
  writeToStream: { cacheNumbers: boolean };
}

/**
 * Turns off mqtt-packet's number cache in the copy that the SDK's mqtt.js loads, found by resolving
 * `chain` one package from the next (the SDK packages down to the one that depends on mqtt.js, as
 * Node resolves them for the SDK): by default its first packet builds 65,536
 * two-byte Buffers, every 16-bit number pre-encoded, in each thread that sends MQTT. That is about
 * 20 ms of CPU and 11 MB of old-generation heap that every later full GC marks again, to save a
 * 2-byte allocation per packet id or length, of which a device writes a handful. The README says to
 * set it before the first write; devices call this before creating their first transport. A layout
 * where the packages cannot be found leaves the cache on: it only costs time.
 */
export function disableMqttNumberCache(chain: readonly string[]): void {
  try {
    let from = import.meta.url;
    for (const name of [...chain, 'mqtt']) from = createRequire(from).resolve(name);
    const packet = createRequire(from)('mqtt-packet') as MqttPacketWriter;
    packet.writeToStream.cacheNumbers = false;
  } catch {
    // Not found where expected: the SDK still works, with the cache.
  }
}
