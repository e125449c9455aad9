// The built-in endpoint's connection string with the library's own `hubPolicies`: it names a
// policy the endpoint takes (one with ServiceConnect), read with @azure/event-hubs unmodified.
import { EventHubConsumerClient } from '@azure/event-hubs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventHubConsumerOptions } from '../sdk/index.js';
import { closedPortUrl, HUB_A } from '../testing/fixtures.js';
import { startTestBed, type TestBed } from '../testing/test-bed.js';
import { HUB_OWNER_POLICY_NAME, WELL_KNOWN_HUB_KEY } from './core/hub-service.js';

let bed: TestBed;
beforeAll(async () => {
  const closed = await closedPortUrl();
  bed = await startTestBed(closed, closed, {
    webView: false,
    hubPolicies: [
      // iothubowner without ServiceConnect first: a string naming it would be refused.
      { keyName: HUB_OWNER_POLICY_NAME, primaryKey: WELL_KNOWN_HUB_KEY, rights: ['RegistryRead', 'RegistryWrite'] },
      { keyName: 'device', primaryKey: Buffer.alloc(32, 1).toString('base64'), rights: ['DeviceConnect'] },
      { keyName: 'service', primaryKey: Buffer.alloc(32, 2).toString('base64'), rights: ['ServiceConnect'] },
    ],
  });
});
afterAll(async () => {
  await bed?.close();
});

describe("the built-in endpoint's connection string with your own hub policies", () => {
  it('names the first policy with ServiceConnect, which the endpoint takes', async () => {
    const connectionString = bed.emulator.eventHubConnectionString(HUB_A);
    expect(connectionString).toContain('SharedAccessKeyName=service;');
    const client = new EventHubConsumerClient('$Default', connectionString, {
      ...eventHubConsumerOptions(bed.emulator),
      retryOptions: { maxRetries: 0 },
    });
    try {
      expect(await client.getPartitionIds()).toEqual(['0', '1', '2', '3']);
    } finally {
      await client.close();
    }
  });
});
