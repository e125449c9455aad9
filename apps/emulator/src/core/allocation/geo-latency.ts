import type { LinkedHub } from '../model.js';
import { pickHashed } from './hashed.js';

/**
 * `geoLatency` ("lowest latency"): DPS measures the latency from the device to each hub's
 * region. The emulator cannot, so each linked hub may declare an emulated `latencyMs`; the hub
 * with the lowest value wins (hubs without one count as infinitely far) and ties, including the
 * case where no hub declares a latency, are broken by the weighted hash as DPS does.
 */
export function pickGeoLatency(registrationId: string, hubs: readonly LinkedHub[]): string | undefined {
  const latency = (hub: LinkedHub) => hub.latencyMs ?? Number.POSITIVE_INFINITY;
  const lowest = Math.min(...hubs.map(latency));
  return pickHashed(
    registrationId,
    hubs.filter((hub) => latency(hub) === lowest),
  );
}
