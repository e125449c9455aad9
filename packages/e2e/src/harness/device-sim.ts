import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { TransportName } from '@dpskit/device-sim';
import type { Emulator } from '@dpskit/emulator';
import { type RunResult, run } from '@dpskit/packaging';

const require = createRequire(import.meta.url);
const packageJsonPath = require.resolve('@dpskit/device-sim/package.json');
const bin = (require(packageJsonPath) as { bin: Record<string, string> }).bin['device-sim'];

/** The installed `device-sim` command, as a user runs it. */
export const DEVICE_SIM_CLI = join(dirname(packageJsonPath), bin ?? 'dist/cli.js');

/** Runs `device-sim <args>` in a child process and collects its output. */
export function runDeviceSim(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return run(process.execPath, [DEVICE_SIM_CLI, ...args], { env: { ...process.env, ...env } });
}

/** device-sim's flags that point one transport at an emulator: host and port, its CA, its ID scope. */
export function connectionArgs(emulator: Emulator, transport: TransportName): string[] {
  const { mqtt, https, amqp, webSockets } = emulator.endpoints;
  const endpoint = { mqtt, http: https, amqp, 'mqtt-ws': webSockets, 'amqp-ws': webSockets }[transport];
  if (!endpoint) throw new Error(`the emulator serves no ${transport} endpoint`);
  return [
    '--transport',
    transport,
    '--provisioning-host',
    `localhost:${endpoint.port}`,
    '--ca',
    emulator.caCertPath,
    '--id-scope',
    emulator.idScope,
  ];
}
