import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readyFileTarget, requireEndpoint, resolveTarget } from './target.js';

const dir = mkdtempSync(join(tmpdir(), 'sdk-target-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const mqtt = { host: '127.0.0.1', port: 8883, provisioningHost: 'localhost:8883' };
const https = { host: '0.0.0.0', port: 8443, provisioningHost: 'localhost' };

describe('emulator targets', () => {
  it('an Emulator (endpoints + caCertPem) and a ready file (+ ca) reduce alike; absent listeners are undefined', () => {
    const fromEmulator = resolveTarget({ endpoints: { mqtt, https }, caCertPem: 'PEM' });
    const fromReadyFile = resolveTarget({ mqtt, https, amqp: null, webSockets: null, ca: Buffer.from('PEM') });
    expect(fromEmulator).toEqual({ mqtt, https, amqp: undefined, webSockets: undefined, ca: 'PEM' });
    expect(fromReadyFile).toEqual(fromEmulator);
    expect(() => requireEndpoint(fromEmulator, 'amqp', 'X')).toThrow(
      '@dpskit/emulator/sdk: X needs amqp: the emulator runs without AMQP (amqpPort false or --no-amqp)',
    );
    expect(requireEndpoint(fromEmulator, 'https', 'X')).toEqual(https);
  });

  it("readyFileTarget reads the CLI's ready file and the CA it names", () => {
    writeFileSync(join(dir, 'ca.pem'), 'THE CA');
    const file = join(dir, 'ready.json');
    writeFileSync(
      file,
      JSON.stringify({
        ready: true,
        pid: 1,
        idScope: '0ne00000A0A',
        mqtt,
        https,
        amqp: null,
        webSockets: null,
        caCertPath: join(dir, 'ca.pem'),
        stateDir: dir,
      }),
    );
    expect(readyFileTarget(file)).toEqual({ mqtt, https, amqp: null, webSockets: null, ca: 'THE CA' });
  });

  it('refuses a file that is not one, naming the file and the field', () => {
    const file = join(dir, 'wrong.json');
    writeFileSync(file, JSON.stringify({ mqtt: { port: 'x' } }));
    expect(() => readyFileTarget(file)).toThrow(`${file} is not a dps-emulator ready file: mqtt.port:`);
    expect(() => readyFileTarget(join(dir, 'absent.json'))).toThrow(
      `cannot read the ready file ${join(dir, 'absent.json')}`,
    );
  });
});
