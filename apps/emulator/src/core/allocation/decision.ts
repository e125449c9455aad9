import type { DevicePayload, InitialTwin } from '@dpskit/contracts';

/** What an allocation policy decided for one registration. */
export type AllocationDecision =
  | { kind: 'assigned'; hub: string; initialTwin?: InitialTwin | null; payload?: DevicePayload | null }
  | { kind: 'failed'; errorCode: number; errorMessage: string };
