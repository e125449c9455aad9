import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { userEnv } from '@dpskit/packaging';

export interface ServedApp {
  /** The webhook URL with its key. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Serves a Functions app folder (e.g. an unzipped deployment package) with an installed
 * `dpskit-allocator` bin under plain Node, on a free port, with `key` as the function key.
 */
export async function serveAppFolder(bin: string, appDir: string, key: string): Promise<ServedApp> {
  const child = spawn(process.execPath, [bin, 'start', appDir, '--port', '0', '--json'], {
    env: userEnv({ ALLOCATOR_FUNCTION_KEY: key }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit');
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  };
  for await (const line of createInterface({ input: child.stdout })) {
    if (!line.includes('"msg":"Webhook URL"')) continue;
    const masked = String((JSON.parse(line) as { data: { webhookUrl: string } }).data.webhookUrl);
    // The key came from the environment, so the line masks it.
    if (!masked.endsWith('?code=****')) {
      await stop();
      throw new Error(`unexpected webhook URL line: ${line}`);
    }
    return { url: masked.replace('****', encodeURIComponent(key)), stop };
  }
  await stop();
  throw new Error(`dpskit-allocator start ${appDir} ended without a webhook URL:\n${stderr}`);
}

/** The body DPS posts for a device of the firmware example's group with `firmwareVersion` in its payload. */
export function firmwareAllocationBody(firmwareVersion: string): string {
  return JSON.stringify({
    enrollmentGroup: { enrollmentGroupId: 'sensors', attestation: { type: 'symmetricKey' } },
    deviceRuntimeContext: { registrationId: 'sensor-9', symmetricKey: {}, payload: { firmwareVersion } },
    linkedHubs: ['contoso-fw-legacy.azure-devices.net', 'contoso-fw-current.azure-devices.net'],
  });
}
