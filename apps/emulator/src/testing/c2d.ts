import type { Emulator } from '../emulator.js';
import type { HubEvent } from '../hub/core/hub-service.js';
import { type DeviceClient, nextHubEvent } from './hub-sdk.js';

/** A cloud-to-device message as azure-iot-device's Client emits it. */
export type SdkMessage = Parameters<DeviceClient['complete']>[0];

/** The next `c2d` hub event of `deviceId` with `outcome`. */
export function c2dEvent(emulator: Emulator, deviceId: string, outcome: string): Promise<HubEvent> {
  return nextHubEvent(emulator, (e) => e.kind === 'c2d' && e.deviceId === deviceId && e.outcome === outcome);
}

/** The outcomes of `deviceId`'s `c2d` events among `events`, in order. */
export function c2dOutcomes(events: readonly HubEvent[], deviceId: string): string[] {
  return events.flatMap((e) => (e.kind === 'c2d' && e.deviceId === deviceId ? [e.outcome] : []));
}

/** A received message's properties as a plain object. */
export function propertiesOf(message: SdkMessage): Record<string, string> {
  const properties: Record<string, string> = {};
  for (let i = 0; i < message.properties.count(); i++) {
    const item = message.properties.getItem(i);
    properties[item.key] = item.value;
  }
  return properties;
}
