import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The lowest port the kernel hands out on its own (Linux: `ip_local_port_range`, 32768 by default;
 * macOS and Windows start at 49152), or 32768 where that cannot be read.
 */
function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 1024) return Math.min(low, 32768);
  } catch {
    // not Linux: 32768 is below every platform's default range
  }
  return 32768;
}

/** True when a server can listen on `port` now (all addresses, as the emulator listens by default). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, () => server.close(() => resolve(true)));
  });
}

/**
 * `count` free ports below the kernel's ephemeral range, for a server that must listen on the same
 * port again after it was stopped or killed (a restart), or that listens on it only later (a
 * command started after its port was chosen).
 *
 * Why not port 0: a port the kernel picked is in the ephemeral range, from which it also picks the
 * source port of every outgoing connection, this machine's other tests' included. Between the kill
 * and the restart nothing listens on it, so an outgoing connection may take it as its source port
 * (to the very port it dials, Linux even connects the socket to itself) and the restart fails with
 * EADDRINUSE: seen once in CI with two test files running at once. Below the range no outgoing
 * connection takes it, and no test's port-0 server either.
 */
export async function stablePorts(count: number): Promise<number[]> {
  const high = ephemeralRangeStart() - 1;
  const low = 20000;
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count && attempt < 1000; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (!ports.includes(port) && (await canListen(port))) ports.push(port);
  }
  if (ports.length < count) throw new Error(`no ${count} free ports between ${low} and ${high}`);
  return ports;
}
