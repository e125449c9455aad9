import { fileURLToPath } from 'node:url';
import { run } from '@dpskit/packaging';
import { describe, expect, it } from 'vitest';

// `npm run demo` runs the compiled demo; turbo builds the package before its tests.
const demo = fileURLToPath(new URL('../dist/demo.js', import.meta.url));

describe('npm run demo', () => {
  it('shows both devices, the allocator log, the toaster on its hub and a passing three-line verdict', async () => {
    const { code, stdout, stderr } = await run(process.execPath, [demo], { env: { ...process.env, NO_COLOR: '1' } });
    expect(code, stderr).toBe(0);
    const sections = [
      'Device contoso-toaster-007',
      'Device contoso-heatpump-088',
      'Allocator log',
      "The toaster's twin",
      'Verdict',
    ];
    const positions = sections.map((s) => stdout.indexOf(`── ${s}`));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(stdout).toContain(
      'Registration Information received from service: contoso-toasters-hub-1098.azure-devices.net, deviceId: contoso-toaster-007',
    );
    expect(stdout).toContain('Msg: Custom allocation failed with status code: 400');
    // It points at the emulator's web view (8090, or a free port when taken).
    expect(stdout).toMatch(/ {2}web view {3}http:\/\/127\.0\.0\.1:\d+\/ {2}\(registrations live/);
    expect(stdout).toMatch(/\[Warning\] Rejected: .*Unrecognized device registration\./);
    const verdict = stdout.slice(stdout.indexOf('── Verdict')).trim().split('\n').slice(1);
    expect(stdout).toContain('Device twin received (tags are not visible to devices):');
    expect(stdout).toContain('  tags      {"deviceType":"toaster","site":"contoso-redmond"}');
    expect(verdict).toHaveLength(3);
    expect(verdict[0]).toMatch(/^✔ contoso-toaster-007 was assigned/);
    expect(verdict[1]).toMatch(/^✔ contoso-heatpump-088 was rejected/);
    expect(verdict[2]).toMatch(
      /^✔ contoso-toaster-007 connected to contoso-toasters-hub-1098.azure-devices.net, found its initial twin/,
    );
  });
});
