import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MqttFault, startFaultyMqttBroker } from '../testing/faulty-mqtt.js';
import { createTestPki, type TestPki } from '../testing/tls.js';
import { runFleet } from './fleet.js';
import type { RegistrationOutcome } from './types.js';

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';

// Issue 8 item 2: the SDK's MQTT transport answers some connection faults by calling its state
// machine's `disconnect` without a callback (`TypeError: callback is not a function`, thrown in
// an event handler). A fleet must survive them: every device gets an outcome, the summary comes.

let pki: TestPki;
beforeAll(() => {
  pki = createTestPki();
});

describe('runFleet over MQTT when the connection drops', () => {
  const faults: MqttFault[] = ['reset-on-connect', 'reset-on-subscribe', 'reset-on-publish', 'close-on-publish'];
  const brokers: Array<{ close(): Promise<void> }> = [];
  afterAll(async () => {
    await Promise.all(brokers.map((broker) => broker.close()));
  });

  it.each(faults)('gives every device an outcome and returns the summary (%s)', async (fault) => {
    const broker = await startFaultyMqttBroker(pki, fault);
    brokers.push(broker);
    const outcomes = new Map<number, string>();
    const summary = await runFleet({
      idScope: '0ne00000A0A',
      groupKey: GROUP_KEY,
      registrationIdTemplates: `fault-${fault}-{n}`,
      provisioningHost: broker.host,
      ca: pki.caPem,
      transport: 'mqtt',
      count: 12,
      concurrency: 6,
      cancelGraceMs: 200,
      onOutcome: (outcome, index) => outcomes.set(index, outcome.status),
    });
    expect(summary.requested).toBe(12);
    expect(outcomes.size).toBe(12);
    expect([...outcomes.values()].every((status) => status === 'error')).toBe(true);
  });

  it.each([
    ['reset while the SDK disconnects after the final answer', 'reset-after-answer'],
    // The service restarted while the device waited to poll: its next poll reconnects and gets the
    // answer. Before device-sim ended dead connections itself, the SDK hung here for good.
    ['reset while the device waits to poll', 'reset-while-waiting'],
  ] as const)('gets the final answer when the connection is %s', async (_, fault) => {
    const broker = await startFaultyMqttBroker(pki, fault);
    brokers.push(broker);
    const outcomes: RegistrationOutcome[] = [];
    const summary = await runFleet({
      idScope: '0ne00000A0A',
      groupKey: GROUP_KEY,
      registrationIdTemplates: `fault-${fault}-{n}`,
      provisioningHost: broker.host,
      ca: pki.caPem,
      transport: 'mqtt',
      count: 6,
      concurrency: 3,
      cancelGraceMs: 200,
      onOutcome: (outcome) => outcomes.push(outcome),
    });
    expect(summary.byStatus.assigned).toBe(6);
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ status: 'assigned', deviceId: outcome.registrationId });
    }
  });
});
