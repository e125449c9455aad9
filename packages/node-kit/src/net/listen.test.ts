import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { type ListenTarget, listen, PortError } from './listen.js';

const HTTPS: ListenTarget = {
  label: 'HTTPS',
  host: '127.0.0.1',
  port: 443,
  portSetting: '--https-port (httpsPort)',
  lowPortAlternative: 'or disable HTTPS with --no-https',
};
const MQTT: ListenTarget = { label: 'MQTT', host: '::1', port: 883, portSetting: '--mqtt-port (mqttPort)' };

describe('PortError', () => {
  it('says how to fix a privileged port, naming the setting and the alternative', () => {
    const https = new PortError(HTTPS, 'EACCES', 'listen EACCES');
    expect(https.message).toMatch(
      /^Cannot listen for HTTPS on 127\.0\.0\.1:443: permission denied: ports below 1024 need privileges\./,
    );
    expect(https.message).toContain('--https-port (httpsPort) or disable HTTPS with --no-https, or allow Node');
    expect(https.message).toContain('setcap cap_net_bind_service=+ep');
    const mqtt = new PortError(MQTT, 'EACCES', 'listen EACCES');
    expect(mqtt.message).toMatch(/^Cannot listen for MQTT on \[::1\]:883: permission denied/);
    expect(mqtt.message).toContain('--mqtt-port (mqttPort), or allow Node');
  });

  it('explains an address that is not on this machine, and passes other causes through', () => {
    expect(new PortError({ ...MQTT, host: '10.9.9.9' }, 'EADDRNOTAVAIL', 'x').message).toContain(
      'the address 10.9.9.9 is not available on this machine. Use --host 127.0.0.1',
    );
    expect(new PortError({ ...MQTT, host: 'h', port: 1 }, 'EOTHER', 'listen EOTHER: strange').message).toBe(
      'Cannot listen for MQTT on h:1: listen EOTHER: strange',
    );
  });
});

describe('listen', () => {
  it('resolves with the port picked for 0, and rejects a taken port with a PortError', async () => {
    const first = net.createServer();
    const port = await listen(first, { label: 'HTTP', host: '127.0.0.1', port: 0, portSetting: '--port' });
    expect(port).toBeGreaterThan(0);
    const second = net.createServer();
    try {
      const err = await listen(second, { label: 'HTTP', host: '127.0.0.1', port, portSetting: '--port' }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PortError);
      expect(err).toMatchObject({ code: 'EADDRINUSE', port, host: '127.0.0.1' });
      expect((err as Error).message).toBe(
        `Cannot listen for HTTP on 127.0.0.1:${port}: the port is already in use. Stop the process using it, or choose another port with --port (0 picks a free one).`,
      );
    } finally {
      await new Promise((resolve) => first.close(resolve));
    }
  });
});
