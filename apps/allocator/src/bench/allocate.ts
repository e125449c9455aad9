import { summarizeLatencies } from '@dpskit/node-kit';
import { startAllocatorHost } from '../local-host/allocator-host.js';

/**
 * Throughput and latency of the locally served webhook: the tutorial toaster request POSTed over
 * real HTTP with its key, first one at a time, then with concurrent clients. Prints one JSON line
 * per scenario. Usage: pnpm --filter @dpskit/allocator bench [-- <requests> <concurrency>]
 */
const BODY = JSON.stringify({
  enrollmentGroup: {
    enrollmentGroupId: 'contoso-custom-allocated-devices',
    attestation: { type: 'symmetricKey' },
    allocationPolicy: 'custom',
    iotHubs: ['contoso-toasters-hub-1098.azure-devices.net'],
    customAllocationDefinition: { webhookUrl: 'https://example/api/allocate?****', apiVersion: '2021-10-01' },
  },
  deviceRuntimeContext: { registrationId: 'contoso-toaster-007', symmetricKey: {}, payload: { a: 1 } },
  linkedHubs: ['contoso-toasters-hub-1098.azure-devices.net'],
});

async function scenario(webhookUrl: string, requests: number, concurrency: number): Promise<void> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < requests) {
      next++;
      const t = performance.now();
      const res = await fetch(webhookUrl, { method: 'POST', body: BODY });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`unexpected status ${res.status}`);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const summary = summarizeLatencies(latencies)!;
  const ms = (value: number): number => Math.round(value * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({ scenario: 'allocate', requests, concurrency, requestsPerSecond: Math.round(requests / seconds), p50Ms: ms(summary.p50), p99Ms: ms(summary.p99), maxMs: ms(summary.max) })}\n`,
  );
}

const requests = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 16);
const host = await startAllocatorHost({ port: 0, host: '127.0.0.1' });
try {
  const url = host.webhookUrl.replace('localhost', '127.0.0.1');
  await scenario(url, 200, 1); // warm-up
  await scenario(url, requests, 1);
  await scenario(url, requests, concurrency);
} finally {
  await host.close();
}
