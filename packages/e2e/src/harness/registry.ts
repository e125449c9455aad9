// The official `azure-iothub` Registry and service Client, unmodified, pointed at the emulated hub
// as a user's tests do it: `fromConnectionString` with the connection string the emulator prints
// (the hub's name, `iothubowner`), then `withEmulator` from `@dpskit/emulator/sdk` (their HTTPS
// requests, and the Client's AMQP connection, go to the emulator and trust its CA).
import type { Emulator } from '@dpskit/emulator';
import { withEmulator } from '@dpskit/emulator/sdk';
import iothub from 'azure-iothub';

const { Client, Registry } = iothub;
export type RegistryClient = InstanceType<typeof Registry>;
export type HubServiceClient = InstanceType<typeof Client>;

export function emulatorRegistry(emulator: Emulator, hub?: string): RegistryClient {
  return withEmulator(Registry.fromConnectionString(emulator.hubConnectionString(hub)), emulator);
}

/** The official `azure-iothub` Client of an emulated hub: direct methods (HTTPS), `send` and feedback (AMQP). */
export function emulatorHubClient(emulator: Emulator, hub?: string): HubServiceClient {
  return withEmulator(Client.fromConnectionString(emulator.hubConnectionString(hub)), emulator);
}
