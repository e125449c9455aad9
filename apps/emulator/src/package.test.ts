import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

// turbo builds the package before its tests run; this checks the published shape, not the sources.
describe('the compiled package', () => {
  it('is importable by name from plain Node, with declarations', () => {
    const script = `
      import { createEmulator, parseConfig, tutorialConfig, PortError } from '@dpskit/emulator';
      const emulator = createEmulator({ log: () => {} });
      console.log(JSON.stringify({
        start: typeof emulator.start,
        idScope: parseConfig(tutorialConfig()).idScope,
        portError: typeof PortError,
      }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: packageDir,
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual({ start: 'function', idScope: '0ne00000A0A', portError: 'function' });
    const pkg = JSON.parse(readFileSync(`${packageDir}/package.json`, 'utf8'));
    expect(readFileSync(`${packageDir}/${pkg.exports['.'].import.types}`, 'utf8')).toContain('createEmulator');
  });

  it('has a dps-emulator bin that prints its usage', () => {
    const pkg = JSON.parse(readFileSync(`${packageDir}/package.json`, 'utf8'));
    const out = execFileSync(process.execPath, [`${packageDir}/${pkg.bin['dps-emulator']}`, '--help'], {
      encoding: 'utf8',
    });
    expect(out).toContain('Usage: dps-emulator start [options]');
    expect(readFileSync(`${packageDir}/${pkg.bin['dps-emulator']}`, 'utf8').startsWith('#!/usr/bin/env node')).toBe(
      true,
    );
  });
});
