import { describe, expect, it } from 'vitest';
import type { HubSession } from '../../lib/hub.js';
import type { FleetSummary } from '../../lib/stats.js';
import type { RegistrationOutcome, StatusUpdate } from '../../lib/types.js';
import { TUTORIAL_HUB, TUTORIAL_TOASTER_OUTPUT } from '../../testing/tutorial.js';
import { withHints } from './fleet-hints.js';
import { hintFor, hubHintFor } from './hints.js';
import { outcomeJson } from './json.js';
import { PROGRESS_LOG_INTERVAL_MS, ProgressLog, renderProgress } from './progress.js';
import { stayEndText, stayEventText } from './stay.js';
import { formatSummary } from './summary.js';
import { TutorialPrinter } from './tutorial.js';

function status(phase: StatusUpdate['phase'], sdkStatus: string): StatusUpdate {
  return { registrationId: 'd', phase, sdkStatus, elapsedMs: 0 };
}

function printed(outcome: RegistrationOutcome, updates: StatusUpdate[], hint?: string): string {
  let text = '';
  const printer = new TutorialPrinter((t) => {
    text += t;
  });
  printer.banner('1.9.1');
  for (const u of updates) printer.status(u);
  printer.result(outcome, hint);
  return text;
}

const PROGRESSION = [
  status('connected', 'PROV_DEVICE_REG_STATUS_CONNECTED'),
  status('assigning', 'PROV_DEVICE_REG_STATUS_ASSIGNING'),
  status('assigning', 'PROV_DEVICE_REG_STATUS_ASSIGNING'),
  status('assigned', 'PROV_DEVICE_REG_STATUS_ASSIGNED'),
];

describe('tutorial output', () => {
  it("prints the assigned device as the tutorial's sample does", () => {
    const text = printed(
      {
        registrationId: 'contoso-toaster-007',
        transport: 'mqtt',
        status: 'assigned',
        assignedHub: TUTORIAL_HUB,
        deviceId: 'contoso-toaster-007',
        durationMs: 1000,
      },
      PROGRESSION,
    );
    expect(text).toBe(TUTORIAL_TOASTER_OUTPUT);
  });

  it('prints a failure with operation id, date, service message and error code', () => {
    const text = printed(
      {
        registrationId: 'contoso-heatpump-088',
        transport: 'mqtt',
        status: 'failed',
        operationId: '4.002305f54fc89692.b1f11200-8776-4b5d-867b-dc21c4b59c12',
        errorCode: 400207,
        errorMessage: 'Custom allocation failed with status code: 400',
        registrationState: {
          registrationId: 'contoso-heatpump-088',
          status: 'failed',
          lastUpdatedDateTimeUtc: '2019-12-27T19:51:41.8579703Z',
        },
        durationMs: 1000,
      },
      PROGRESSION.slice(0, 2),
    );
    expect(text).toContain(
      'Provisioning Failure: OperationId: 4.002305f54fc89692.b1f11200-8776-4b5d-867b-dc21c4b59c12 - Date: 2019-12-27T19:51:41.8579703Z - Msg: Custom allocation failed with status code: 400\n',
    );
    expect(text).toContain('Failure registering device: status failed, error code 400207\n');
  });

  it('prints an error with its name, code and a hint, without an empty status block', () => {
    const text = printed(
      {
        registrationId: 'd',
        transport: 'http',
        status: 'error',
        errorName: 'UnauthorizedError',
        errorCode: 401002,
        errorMessage: 'Unauthorized',
        durationMs: 5,
      },
      [],
      'check the key',
    );
    expect(text).toBe(
      [
        'Provisioning API Version: 1.9.1',
        '',
        'Registering Device',
        '',
        'Failure registering device: UnauthorizedError (error code 401002): Unauthorized',
        'Hint: check the key',
        '',
      ].join('\n'),
    );
  });

  it('prints one JSON line for --json, with the hint', () => {
    const line = outcomeJson(
      { registrationId: 'd', transport: 'mqtt', status: 'error', errorName: 'ECONNREFUSED', durationMs: 3 },
      'is the emulator running?',
    );
    expect(line.endsWith('\n')).toBe(true);
    expect(line.trim().includes('\n')).toBe(false);
    expect(JSON.parse(line)).toMatchObject({
      status: 'error',
      errorName: 'ECONNREFUSED',
      hint: 'is the emulator running?',
    });
  });
});

describe('hub session output', () => {
  const assigned: RegistrationOutcome = {
    registrationId: 'contoso-toaster-007',
    transport: 'mqtt',
    status: 'assigned',
    assignedHub: TUTORIAL_HUB,
    deviceId: 'contoso-toaster-007',
    durationMs: 1000,
  };

  it('prints the twin found, the reported properties and the telemetry after the registration', () => {
    const text = printed(
      {
        ...assigned,
        hubSession: {
          status: 'connected',
          hub: TUTORIAL_HUB,
          deviceId: 'contoso-toaster-007',
          desired: { state: 'ready', $version: 1 },
          reportedFound: { $version: 1 },
          reported: { firmware: '1.0' },
          telemetrySent: 3,
          durationMs: 42,
        },
      },
      PROGRESSION,
    );
    expect(text).toBe(
      `${TUTORIAL_TOASTER_OUTPUT}\nConnecting to IoT hub ${TUTORIAL_HUB} as contoso-toaster-007\nDevice twin received (tags are not visible to devices):\n  desired:  {"state":"ready","$version":1}\n  reported: {"$version":1}\nReported properties sent: {"firmware":"1.0"}\nTelemetry sent: 3 messages\nHub session done in 42 ms\n`,
    );
  });

  it('prints a failure on the hub with its error', () => {
    const text = printed(
      {
        ...assigned,
        hubSession: {
          status: 'error',
          hub: TUTORIAL_HUB,
          deviceId: 'contoso-toaster-007',
          telemetrySent: 0,
          errorName: 'UnauthorizedError',
          errorMessage: 'Not authorized',
          durationMs: 5,
        },
      },
      PROGRESSION,
    );
    expect(text).toContain('Failure on the hub: UnauthorizedError: Not authorized\n');
  });

  it('counts connected devices in the fleet summary', () => {
    const summary = {
      transport: 'mqtt',
      concurrency: 2,
      requested: 2,
      launched: 2,
      completed: 2,
      cancelled: 0,
      notStarted: 0,
      stoppedEarly: false,
      byStatus: { assigned: 2, failed: 0, disabled: 0, error: 0 },
      outcomes: [{ status: 'assigned', count: 2 }],
      hubs: [{ hub: TUTORIAL_HUB, count: 2 }],
      durationMs: 1000,
      registrationsPerSecond: 2,
      latencyMs: null,
      hub: { connected: 1, failed: 1, telemetrySent: 4, errors: [{ errorName: 'UnauthorizedError', count: 1 }] },
    } satisfies FleetSummary;
    expect(formatSummary(summary)).toContain(
      'Connected to their hub: 1 of 2 assigned devices, 4 telemetry messages sent (failed: UnauthorizedError × 1)',
    );
  });
});

describe('hints', () => {
  const context = { provisioningHost: 'localhost:8883', transport: 'mqtt' as const, caGiven: false };
  const error = (partial: Partial<RegistrationOutcome>): RegistrationOutcome => ({
    registrationId: 'd',
    transport: 'mqtt',
    status: 'error',
    durationMs: 1,
    ...partial,
  });

  it('tells to pass --ca for an untrusted certificate', () => {
    expect(hintFor(error({ errorName: 'SELF_SIGNED_CERT_IN_CHAIN' }), context)).toContain('pass --ca <file>');
    expect(hintFor(error({ errorName: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }), { ...context, caGiven: true })).toContain(
      'not issued by the CA in --ca',
    );
  });

  it('tells a webhook that answered an error from one DPS could not reach or that was too slow', () => {
    const failed = (errorMessage: string) => ({ status: 'failed' as const, errorCode: 400207, errorMessage });
    expect(hintFor(failed('Custom allocation failed with status code: 404'), context)).toBe(
      'the custom allocation webhook answered with an error status: its log says why',
    );
    expect(hintFor(failed('An error occurred while sending the request.'), context)).toBe(
      "the service could not reach the custom allocation webhook: is your Function running, at the enrollment's webhookUrl (host, port, route)?",
    );
    expect(
      hintFor(failed('Custom allocation failed: the webhook did not answer within 30000 ms (timeout).'), context),
    ).toContain('did not answer in time');
    // a 2xx answer DPS could not use: the status was fine, the answer was not
    for (const message of [
      'Custom allocation failed: the webhook returned iotHubHostName "x.azure-devices.net", which is not one of the linked hubs (a.azure-devices.net).',
      'Custom allocation failed: the webhook response is not valid JSON (Unexpected end of JSON input).',
    ]) {
      expect(hintFor(failed(message), context)).toBe(
        "the custom allocation webhook answered, but not with an answer the service could use: the message says what was wrong, the webhook's log what it returned",
      );
    }
  });

  it('covers refused connections, credentials and the webhook', () => {
    expect(hintFor(error({ errorName: 'ECONNREFUSED' }), context)).toContain('is the emulator running');
    expect(hintFor(error({ errorName: 'UnauthorizedError', errorCode: 401002 }), context)).toContain('--group-key');
    expect(hintFor(error({ status: 'failed', errorCode: 400207 }), context)).toContain('webhook');
    expect(hintFor({ ...error({}), status: 'assigned' }, context)).toBeUndefined();
  });

  it('names the listener of the transport and the port the SDK dials when none is given', () => {
    const refused = error({ errorName: 'ECONNREFUSED' });
    expect(hintFor(refused, { ...context, transport: 'amqp', provisioningHost: 'localhost' })).toBe(
      'nothing accepts connections at localhost:5671: is the emulator running, and is --provisioning-host the AMQP port it printed?',
    );
    expect(hintFor(refused, { ...context, transport: 'amqp-ws', provisioningHost: 'localhost' })).toBe(
      'nothing accepts connections at localhost:443: is the emulator running, and is --provisioning-host the HTTPS port it printed?',
    );
    expect(hintFor(refused, { ...context, transport: 'mqtt', provisioningHost: 'localhost:1' })).toContain(
      'at localhost:1: is the emulator running, and is --provisioning-host the MQTT port',
    );
    expect(hintFor(error({ errorName: 'ECONNRESET' }), { ...context, transport: 'amqp' })).toContain(
      'speaks AMQP over TLS for --transport amqp',
    );
    expect(hintFor(error({ errorName: 'TimeoutError' }), { ...context, transport: 'amqp' })).toContain('the AMQP port');
  });

  it('says the port speaks another protocol when the answer was not the transport’s', () => {
    const amqp = { ...context, transport: 'amqp' as const, provisioningHost: 'localhost:8443' };
    const expected =
      'localhost:8443 does not answer in AMQP over TLS: is --provisioning-host the AMQP port the emulator printed?';
    expect(hintFor(error({ errorName: 'ProtocolError' }), amqp)).toBe(expected);
    // A port that closes without a word (an MQTT listener reading an AMQP header).
    expect(hintFor(error({ errorName: 'NotConnectedError' }), amqp)).toBe(expected);
    // mqtt.js reading the AMQP listener's protocol header as a CONNACK.
    expect(
      hintFor(
        error({ errorName: 'Error', errorMessage: 'Connection refused: Unacceptable protocol version' }),
        context,
      ),
    ).toBe(
      'localhost:8883 does not answer in MQTT over TLS: is --provisioning-host the MQTT port the emulator printed?',
    );
    expect(hintFor(error({ errorName: 'NotConnectedError' }), context)).toBeUndefined();
  });
});

describe('hub hints', () => {
  const context = { hubHost: 'localhost:5671', hubTransport: 'amqp' as const, caGiven: false };
  const session = (partial: Partial<HubSession>): HubSession => ({
    status: 'error',
    hub: TUTORIAL_HUB,
    deviceId: 'contoso-toaster-007',
    telemetrySent: 0,
    durationMs: 1,
    ...partial,
  });

  it('names --hub-host and the hub transport’s listener for a connection that could not be made', () => {
    expect(hubHintFor(session({ errorName: 'ECONNREFUSED' }), { ...context, hubHost: 'localhost:1' })).toBe(
      'nothing accepts connections at localhost:1: is the emulator running, and is --hub-host the AMQP port it printed?',
    );
    expect(hubHintFor(session({ errorName: 'ECONNREFUSED' }), { ...context, hubTransport: 'mqtt-ws' })).toContain(
      'is --hub-host the HTTPS port it printed?',
    );
    // No --hub-host: the device dialed its hub by name, on the transport's own port.
    expect(hubHintFor(session({ errorName: 'ECONNREFUSED' }), { ...context, hubHost: undefined })).toContain(
      `at ${TUTORIAL_HUB}:5671:`,
    );
    expect(hubHintFor(session({ errorName: 'ENOTFOUND' }), { ...context, hubHost: 'hub.invalid' })).toBe(
      'the host name in --hub-host "hub.invalid" cannot be resolved',
    );
    expect(hubHintFor(session({ errorName: 'EPROTO' }), context)).toBe(
      'the connection to localhost:5671 broke off: check that the port speaks AMQP over TLS for --hub-transport amqp',
    );
    expect(hubHintFor(session({ errorName: 'ProtocolError' }), { ...context, hubHost: 'localhost:8443' })).toBe(
      'localhost:8443 does not answer in AMQP over TLS: is --hub-host the AMQP port the emulator printed?',
    );
    expect(hubHintFor(session({ errorName: 'SELF_SIGNED_CERT_IN_CHAIN' }), context)).toContain('pass --ca <file>');
    expect(hubHintFor(session({ errorName: 'TimeoutError' }), context)).toContain('--hub-host points at the AMQP port');
  });

  it('says nothing for a device on its hub or a refusal of the hub', () => {
    expect(hubHintFor(session({ status: 'connected' }), context)).toBeUndefined();
    expect(hubHintFor(session({ errorName: 'UnauthorizedError' }), context)).toBeUndefined();
  });
});

function summary(partial: Partial<FleetSummary> = {}): FleetSummary {
  return {
    transport: 'mqtt',
    concurrency: 50,
    requested: 1000,
    launched: 1000,
    completed: 1000,
    cancelled: 0,
    notStarted: 0,
    stoppedEarly: false,
    byStatus: { assigned: 500, failed: 500, disabled: 0, error: 0 },
    outcomes: [
      { status: 'assigned', count: 500 },
      {
        status: 'failed',
        errorCode: 400207,
        errorName: 'ProvisioningRegistrationFailedError',
        errorMessage: 'Custom allocation failed with status code: 400',
        count: 500,
      },
    ],
    hubs: [{ hub: TUTORIAL_HUB, count: 500 }],
    durationMs: 12_345,
    registrationsPerSecond: 81.0044,
    latencyMs: { count: 1000, min: 1010.2, mean: 1050.4, p50: 1043, p95: 1120.4, p99: 1180.6, max: 1201 },
    ...partial,
  };
}

describe('withHints (device-sim fleet)', () => {
  const context = { provisioningHost: 'localhost:1', transport: 'mqtt' as const, caGiven: true };
  const hubContext = { hubHost: 'localhost:2', hubTransport: 'amqp' as const, caGiven: true };

  it("puts register's hint on each row a user can act on, and on each error met on the hubs", () => {
    const hinted = withHints(
      summary({
        outcomes: [
          { status: 'assigned', count: 1 },
          { status: 'error', errorName: 'ECONNREFUSED', errorMessage: 'connect ECONNREFUSED', count: 2 },
          { status: 'error', errorName: 'SomethingElse', count: 3 },
        ],
        hub: { connected: 0, failed: 1, telemetrySent: 0, errors: [{ errorName: 'ECONNREFUSED', count: 1 }] },
      }),
      context,
      hubContext,
    );
    expect(hinted.outcomes.map((g) => g.hint)).toEqual([
      undefined,
      'nothing accepts connections at localhost:1: is the emulator running, and is --provisioning-host the MQTT port it printed?',
      undefined,
    ]);
    expect(hinted.hub?.errors[0]?.hint).toBe(
      'nothing accepts connections at localhost:2: is the emulator running, and is --hub-host the AMQP port it printed?',
    );
    expect(withHints(summary(), context, undefined).outcomes[1]?.hint).toContain('webhook');
  });
});

describe('formatSummary', () => {
  it('shows totals, rate, percentiles, outcomes by status and code, and hubs', () => {
    const text = formatSummary(summary());
    expect(text).toContain('Fleet summary (mqtt, concurrency 50)');
    expect(text).toContain('devices    1000 requested, 1000 completed');
    expect(text).toContain('duration   12.3 s, 81.0 registrations/s');
    expect(text).toContain('latency    p50 1043 ms, p95 1120 ms, p99 1181 ms, max 1201 ms (min 1010 ms, mean 1050 ms)');
    const lines = text.split('\n');
    const header = lines.findIndex((l) => l.startsWith('  status'));
    expect(lines[header]).toBe('  status    error code  devices   share  detail');
    expect(lines[header + 1]).toBe('  assigned                  500  50.0 %');
    expect(lines[header + 2]).toBe(
      '  failed    400207          500  50.0 %  ProvisioningRegistrationFailedError: Custom allocation failed with status code: 400',
    );
    expect(text).toContain(`  ${TUTORIAL_HUB}      500`);
    expect(text).not.toContain('stopped early');
  });

  it('marks a row that also holds other messages', () => {
    const text = formatSummary(
      summary({
        outcomes: [{ status: 'error', errorName: 'Error', errorMessage: 'first', otherMessages: true, count: 7 }],
      }),
    );
    expect(text).toContain('Error: first (and other messages)');
  });

  it('says how a stopped run ended', () => {
    const text = formatSummary(
      summary({ stoppedEarly: true, completed: 420, cancelled: 35, notStarted: 545, launched: 455 }),
    );
    expect(text).toContain('stopped early: 420 of 1000 devices completed (35 cancelled in flight, 545 not started)');
  });

  it("prints register's hints under the outcomes, once each", () => {
    const webhook = 'the custom allocation webhook answered with an error status: its log says why';
    const text = formatSummary(
      summary({
        outcomes: [
          { status: 'assigned', count: 500 },
          { status: 'failed', errorCode: 400207, errorMessage: 'status code: 400', count: 300, hint: webhook },
          { status: 'failed', errorCode: 400207, errorMessage: 'status code: 404', count: 200, hint: webhook },
        ],
      }),
    );
    const lines = text.split('\n');
    const hint = lines.indexOf(`Hint: ${webhook}`);
    expect(hint).toBe(lines.findIndex((l) => l.includes('status code: 404')) + 1);
    expect(lines.filter((l) => l.startsWith('Hint:'))).toHaveLength(1);
    expect(formatSummary(summary())).not.toContain('Hint:');
  });

  it('handles a run with no outcomes', () => {
    const text = formatSummary(summary({ completed: 0, outcomes: [], hubs: [], latencyMs: null }));
    expect(text).toContain('no completed registrations');
    expect(text).toContain('(no device assigned)');
  });
});

describe('renderProgress', () => {
  it('draws a bar with counts and rate', () => {
    expect(
      renderProgress(
        {
          requested: 100,
          launched: 60,
          finished: 50,
          inFlight: 10,
          byStatus: { assigned: 40, failed: 9, disabled: 0, error: 1 },
          elapsedMs: 2000,
        },
        10,
      ),
    ).toBe('[#####.....] 50/100 50%  assigned 40  failed 9  error 1  in flight 10  25.0/s  2.0 s');
  });
});

describe('ProgressLog (stderr not a terminal)', () => {
  const at = (elapsedMs: number, finished: number) => ({
    requested: 1200,
    launched: finished + 100,
    finished,
    inFlight: 100,
    byStatus: { assigned: finished, failed: 0, disabled: 0, error: 0 },
    elapsedMs,
  });

  it('writes a plain line once per interval of the fleet’s elapsed time, none before the first', () => {
    let text = '';
    const log = new ProgressLog({
      write: (t) => {
        text += t;
        return true;
      },
    });
    for (const [ms, n] of [
      [1_000, 10],
      [14_999, 300],
      [15_000, 400],
      [29_000, 700],
      [61_000, 1100],
    ] as const) {
      log.update(at(ms, n));
    }
    expect(text).toBe(
      'device-sim: 400/1200 33%  assigned 400  failed 0  error 0  in flight 100  26.7/s  15.0 s\n' +
        'device-sim: 1100/1200 91%  assigned 1100  failed 0  error 0  in flight 100  18.0/s  61.0 s\n',
    );
    expect(PROGRESS_LOG_INTERVAL_MS).toBe(15_000);
  });
});

describe('stay output (register --stay): one line per event', () => {
  const at = '2026-12-05T03:20:13.829Z';

  it.each([
    [
      {
        atUtc: at,
        event: 'method',
        methodName: 'reboot',
        requestId: '1a',
        payload: { delay: 3 },
        status: 200,
        response: { ok: true },
      },
      `${at} method reboot (request 1a) payload {"delay":3} -> 200 {"ok":true}`,
    ],
    [
      { atUtc: at, event: 'method', methodName: 'quiet', requestId: '1b', payload: null },
      `${at} method quiet (request 1b) payload null -> no answer (the caller gets 504101 when its response timeout ends)`,
    ],
    [
      { atUtc: at, event: 'desired', version: 4, patch: { toastLevel: 5, $version: 4 } },
      `${at} desired $version 4: {"toastLevel":5,"$version":4}`,
    ],
    [
      {
        atUtc: at,
        event: 'message',
        messageId: 'm1',
        contentType: 'application/json',
        properties: { priority: 'high' },
        body: 'line one\nline two',
        bodyEncoding: 'utf-8',
        bodyBytes: 17,
        completed: true,
      },
      `${at} message id m1, application/json, properties {"priority":"high"}, 17 bytes: "line one\\nline two" (completed)`,
    ],
    [
      {
        atUtc: at,
        event: 'message',
        properties: {},
        body: '/w==',
        bodyEncoding: 'base64',
        bodyBytes: 1,
        completed: false,
        errorMessage: 'gone',
      },
      `${at} message 1 bytes (base64): "/w==" (not completed: gone)`,
    ],
    [{ atUtc: at, event: 'telemetry', seq: 7 }, `${at} telemetry sent: seq 7`],
    [
      { atUtc: at, event: 'reconnecting', errorName: 'Error', errorMessage: 'read ECONNRESET' },
      `${at} connection lost (Error: read ECONNRESET): the SDK reconnects`,
    ],
    [{ atUtc: at, event: 'reconnected' }, `${at} reconnected`],
    [
      { atUtc: at, event: 'disconnected', errorName: 'NotConnectedError', errorMessage: 'closed' },
      `${at} disconnected: NotConnectedError: closed`,
    ],
  ] as const)('%j', (event, line) => {
    expect(stayEventText(event as Parameters<typeof stayEventText>[0])).toBe(line);
  });

  it('keeps a long message body to its first 200 characters', () => {
    const line = stayEventText({
      atUtc: at,
      deviceId: 'd',
      event: 'message',
      properties: {},
      body: 'x'.repeat(5000),
      bodyEncoding: 'utf-8',
      bodyBytes: 5000,
      completed: true,
    });
    expect(line).toBe(`${at} message 5000 bytes: "${'x'.repeat(200)}"… (completed)`);
  });

  it('ends with what the device saw, or the failure', () => {
    const session = { hub: TUTORIAL_HUB, deviceId: 'd', durationMs: 9000 };
    expect(
      stayEndText({
        ...session,
        status: 'connected',
        telemetrySent: 1,
        stay: { methods: 2, desiredChanges: 1, messages: 3, stayedMs: 8460 },
      }),
    ).toBe(
      'Left the hub after 8.5 s: 2 method calls, 1 desired property change, 3 cloud-to-device messages, 1 telemetry message sent',
    );
    expect(
      stayEndText({
        ...session,
        status: 'error',
        telemetrySent: 0,
        errorName: 'TimeoutError',
        errorMessage: 'no answer',
      }),
    ).toBe('Failure on the hub: TimeoutError: no answer');
  });
});
