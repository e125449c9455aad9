import { describe, expect, it } from 'vitest';
import { PortError } from './listen.js';

describe('PortError', () => {
  it('says how to fix a privileged port, naming the CLI flag and the option', () => {
    const https = new PortError('https', '127.0.0.1', 443, 'EACCES', 'listen EACCES');
    expect(https.message).toMatch(
      /^Cannot listen for HTTPS on 127\.0\.0\.1:443: permission denied: ports below 1024 need privileges\./,
    );
    expect(https.message).toContain('--https-port (httpsPort)');
    expect(https.message).toContain('--no-https');
    expect(https.message).toContain('setcap cap_net_bind_service=+ep');
    const mqtt = new PortError('mqtt', '::1', 883, 'EACCES', 'listen EACCES');
    expect(mqtt.message).toMatch(/^Cannot listen for MQTT on \[::1\]:883: permission denied/);
    expect(mqtt.message).not.toContain('--no-https');
  });

  it('explains an address that is not on this machine, and passes other causes through', () => {
    expect(new PortError('mqtt', '10.9.9.9', 8883, 'EADDRNOTAVAIL', 'x').message).toContain(
      'the address 10.9.9.9 is not available on this machine',
    );
    expect(new PortError('mqtt', 'h', 1, 'EOTHER', 'listen EOTHER: strange').message).toBe(
      'Cannot listen for MQTT on h:1: listen EOTHER: strange',
    );
  });
});
