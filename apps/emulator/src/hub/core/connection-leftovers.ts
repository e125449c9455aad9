import type { HubDevice } from './identity.js';
import type { HubStore } from './store.js';

/** How many devices (or modules) one read of the scan takes: the registry is read a batch at a time. */
const BATCH = 500;

/**
 * Marks `Disconnected` every device and module of `hubs` that the store shows `Connected`, and
 * returns how many. A connection lives no longer than the process that held it, but a process that
 * was killed (SIGKILL, a crash, the machine going down) never wrote its devices' disconnection: on
 * the next start on the same state folder they stayed `Connected` in the registry (and its queries,
 * and the web view) until each connected and closed again. `connectionStateUpdatedTime` becomes
 * `now`, the moment the hub learned it (IoT Hub's own is when it saw the connection end).
 *
 * Only for a process that has the store to itself, before it takes any connection: another
 * process serving the same store (`--workers`, a `sharedStore` instance) holds live connections
 * this would mark Disconnected (emulator.ts calls it where it releases the previous run's
 * cloud-to-device locks, on the same condition).
 */
export function disconnectLeftovers(store: HubStore, hubs: readonly string[], now: Date): number {
  const at = now.toISOString();
  let count = 0;
  /** The batch's Connected records, Disconnected (without the connection's name) in one write. */
  const disconnect = <T extends HubDevice>(records: readonly T[], put: (record: T) => void) => {
    const connected = records.filter((record) => record.connectionState === 'Connected');
    if (connected.length === 0) return;
    store.transaction(() => {
      for (const { connection: _gone, ...record } of connected)
        put({ ...record, connectionState: 'Disconnected', connectionStateUpdatedUtc: at } as T);
    });
    count += connected.length;
  };
  for (const hub of hubs) {
    let device: string | undefined;
    for (;;) {
      const batch = store.devicesAfter(hub, device, BATCH);
      disconnect(batch, (record) => store.putDevice(record));
      device = batch.at(-1)?.identity.deviceId;
      if (batch.length < BATCH) break;
    }
    let module: readonly [string, string] | undefined;
    for (;;) {
      const batch = store.modulesAfter(hub, module, BATCH);
      disconnect(batch, (record) => store.putModule(record));
      const last = batch.at(-1);
      if (!last || batch.length < BATCH) break;
      module = [last.identity.deviceId, last.identity.moduleId];
    }
  }
  return count;
}
