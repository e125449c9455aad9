// Plain JavaScript, as index.js (Node 20 cannot import TypeScript from a dependency); types in
// closed-port.d.ts. A test helper shared by the apps' tests: it lives here, in the private package
// every package's tests already depend on, because a published package may ship no testing files
// (packages/packaging's published-packages test).
import net from 'node:net';

/**
 * Port 1: below the range the kernel hands out for port 0, so no server of a test running
 * alongside can be given it. (A port that was free a moment ago can be: one such "unreachable"
 * webhook was answered with a hang-up instead of ECONNREFUSED.)
 */
const CLOSED_PORT = 1;

/**
 * A loopback port nothing listens on, for a test that needs a connection refused (an unreachable
 * webhook, a DPS that is down). Checked: a connection to 127.0.0.1 on it is refused; otherwise
 * this throws, since the test would not test what it says.
 */
export async function closedPort() {
  const refused = await new Promise((resolve) => {
    const socket = net.connect(CLOSED_PORT, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err) => resolve(err.code === 'ECONNREFUSED'));
  });
  if (!refused) throw new Error(`127.0.0.1:${CLOSED_PORT} does not refuse connections; the tests need it closed`);
  return CLOSED_PORT;
}
