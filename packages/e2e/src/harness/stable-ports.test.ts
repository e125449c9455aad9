import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stablePorts } from './stable-ports.js';

describe('stablePorts', () => {
  it('gives distinct ports a server can listen on, below the kernel’s ephemeral range', async () => {
    const ports = await stablePorts(2);
    expect(new Set(ports).size).toBe(2);
    let rangeStart = 32768;
    try {
      rangeStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    } catch {}
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20000);
      expect(port).toBeLessThan(Math.min(rangeStart, 32768));
    }
  });
});
