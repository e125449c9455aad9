import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pickHashed, unitHash } from './hashed.js';

const ids = Array.from({ length: 4000 }, (_, i) => `device-${i}`);
const share = (hubs: { hostName: string; allocationWeight: number }[]) => {
  const counts = new Map<string, number>();
  for (const id of ids) {
    const hub = pickHashed(id, hubs) as string;
    counts.set(hub, (counts.get(hub) ?? 0) + 1);
  }
  return counts;
};

describe('pickHashed', () => {
  it("scores with the SHA-256 digest's first 53 bits and picks the hub the rendezvous hash gives, for every id", () => {
    // The reference reads the digest as a Buffer (as the code did before it read a 'binary' string).
    const unit = (id: string, host: string) => {
      const digest = createHash('sha256').update(`${id.toLowerCase()}\n${host.toLowerCase()}`, 'utf8').digest();
      return ((digest.readUInt32BE(0) >>> 11) * 2 ** 32 + digest.readUInt32BE(4) + 0.5) / 2 ** 53;
    };
    const hubs = [
      { hostName: 'Hub-A.azure-devices.net', allocationWeight: 1 },
      { hostName: 'hub-b.azure-devices.net', allocationWeight: 3 },
      { hostName: 'hub-\u00e9.azure-devices.net', allocationWeight: 2 },
    ];
    for (const id of [...ids, 'Device-\u00fc-1', 'x'.repeat(128)]) {
      for (const hub of hubs) expect(unitHash(id, hub.hostName)).toBe(unit(id, hub.hostName));
      const scores = hubs.map((hub) => -hub.allocationWeight / Math.log(unit(id, hub.hostName)));
      expect(pickHashed(id, hubs)).toBe(hubs[scores.indexOf(Math.max(...scores))]?.hostName);
    }
  });

  it('is deterministic per device and case-insensitive in the registration id', () => {
    const hubs = [
      { hostName: 'a.net', allocationWeight: 1 },
      { hostName: 'b.net', allocationWeight: 1 },
    ];
    expect(pickHashed('Contoso-Toaster-007', hubs)).toBe(pickHashed('contoso-toaster-007', hubs));
    expect(pickHashed('contoso-toaster-007', [...hubs].reverse())).toBe(pickHashed('contoso-toaster-007', hubs));
    expect(pickHashed('x', [])).toBeUndefined();
  });

  it('spreads devices in proportion to allocationWeight', () => {
    const even = share([
      { hostName: 'a.net', allocationWeight: 1 },
      { hostName: 'b.net', allocationWeight: 1 },
    ]);
    expect(Math.abs((even.get('a.net') ?? 0) / ids.length - 0.5)).toBeLessThan(0.04);
    const weighted = share([
      { hostName: 'a.net', allocationWeight: 1 },
      { hostName: 'b.net', allocationWeight: 3 },
    ]);
    expect(Math.abs((weighted.get('b.net') ?? 0) / ids.length - 0.75)).toBeLessThan(0.04);
  });

  it('moves devices only onto a newly added hub', () => {
    const two = [
      { hostName: 'a.net', allocationWeight: 1 },
      { hostName: 'b.net', allocationWeight: 1 },
    ];
    const three = [...two, { hostName: 'c.net', allocationWeight: 1 }];
    for (const id of ids.slice(0, 500)) {
      const after = pickHashed(id, three);
      if (after !== 'c.net') expect(after).toBe(pickHashed(id, two));
    }
  });
});
