// A SAS token's three claims — `sr` (what it reaches, a prefix by segment), `se` (when it ends),
// `skn` (whose key, with which rights) — checked on every entry of the emulator, one table: each
// row opens one path with one token and says what the path answered (an SDK's error code where an
// official client can express the token, else the raw protocol's answer). One emulator for the file.
import { createSasToken, generateSymmetricKey } from '@dpskit/contracts';
import type { LogRecord } from '@dpskit/node-kit';
import type { Connection, EventContext } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HUB_POLICIES, type HubPolicy } from './hub/core/hub-service.js';
import { HUB_A, HUB_B } from './testing/fixtures.js';
import { rheaConnect } from './testing/raw-amqp.js';
import { startTestBedWithWebhook, type TestBedWithWebhook } from './testing/test-bed.js';

/** The hub's policies as a new IoT hub has them (azure-docs iot-hub-dev-guide-sas), each its own key. */
const POLICIES: HubPolicy[] = [
  ...DEFAULT_HUB_POLICIES,
  { keyName: 'service', primaryKey: generateSymmetricKey(32), rights: ['ServiceConnect'] },
  { keyName: 'device', primaryKey: generateSymmetricKey(32), rights: ['DeviceConnect'] },
  { keyName: 'registryRead', primaryKey: generateSymmetricKey(32), rights: ['RegistryRead'] },
];
const policy = (name: string) => POLICIES.find((p) => p.keyName === name) as HubPolicy;

let bed: TestBedWithWebhook;
const logs: LogRecord[] = [];

beforeAll(async () => {
  bed = await startTestBedWithWebhook({ hubPolicies: POLICIES, log: (record) => logs.push(record) });
});
afterAll(async () => {
  await bed?.close();
});

const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;
const anHourAgo = () => Math.floor(Date.now() / 1000) - 3600;

/** A policy's token: `sr` the resource given, signed with the policy's key unless `key` is given. */
function policyToken(options: { policy: string; resource: string; expiresAt?: number; key?: string }): string {
  return createSasToken({
    resource: options.resource,
    key: options.key ?? policy(options.policy).primaryKey,
    keyName: options.policy,
    expiresAt: options.expiresAt ?? inAnHour(),
    encodeResource: true,
  });
}

/**
 * SASL PLAIN `{user}@sas.root.{hub name}` with `token`, then one link: a sender on
 * `/messages/devicebound` (cloud-to-device, `attached` once the hub grants it credit) or a receiver
 * on `messages/events` (the Event Hubs samples' redirect). Resolves with what happened: `sasl <code>`
 * (the SASL outcome), `attached`, or the link's error condition.
 */
function saslRoot(options: { user: string; token: string; link: 'c2d' | 'events' }): Promise<string> {
  const hubName = HUB_A.split('.')[0];
  return new Promise((resolve) => {
    let connection: Connection | undefined;
    const done = (outcome: string) => {
      resolve(outcome);
      connection?.close();
    };
    connection = rheaConnect(bed.emulator.endpoints.amqp?.port ?? 0, bed.emulator.caCertPem, {
      hostname: HUB_A,
      username: `${options.user}@sas.root.${hubName}`,
      password: options.token,
    });
    connection.on('connection_error', (context: EventContext) => {
      const error = (context.error ?? context.connection.error) as
        | { description?: string; condition?: string }
        | undefined;
      const sasl = /^Failed to authenticate: (\d)$/.exec(error?.description ?? '');
      done(sasl ? `sasl ${sasl[1]}` : String(error?.condition));
    });
    connection.on('disconnected', () => done('disconnected'));
    connection.on('connection_open', (context: EventContext) => {
      if (options.link === 'c2d') {
        const sender = context.connection.open_sender({ target: { address: '/messages/devicebound' } });
        sender.on('sendable', () => done('attached'));
        sender.on('sender_error', () => done(String((sender.error as { condition?: string })?.condition)));
      } else {
        const receiver = context.connection.open_receiver({
          source: { address: `amqps://${HUB_A}/messages/events/$management` },
        });
        receiver.on('receiver_error', () => done(String((receiver.error as { condition?: string })?.condition)));
      }
    });
  });
}

interface Row {
  path: string;
  token: string;
  run(): Promise<string>;
  expected: string;
}

const rows: Row[] = [
  // SASL PLAIN {policy}@sas.root.{hub}: checked in SASL (IoT Hub's outcome for a refused one is
  // `sys`, 2); what the connection may reach is its token's sr, by segment.
  ...(
    [
      ['iothubowner', { resource: HUB_A }, 'c2d', 'attached'],
      ['iothubowner', { resource: `${HUB_A}/messages` }, 'c2d', 'attached'],
      ['iothubowner', { resource: `${HUB_A}/messages/events` }, 'events', 'amqp:link:redirect'],
      ['iothubowner', { resource: `${HUB_A}/messages/events` }, 'c2d', 'amqp:unauthorized-access'],
      ['iothubowner', { resource: `${HUB_A}/messages/eventsx` }, 'events', 'amqp:unauthorized-access'],
      ['service', { resource: HUB_A }, 'c2d', 'attached'],
      ['iothubowner', { resource: HUB_A, expiresAt: anHourAgo() }, 'c2d', 'sasl 2'],
      ['iothubowner', { resource: HUB_A, key: generateSymmetricKey(32) }, 'c2d', 'sasl 2'],
      ['iothubowner', { resource: HUB_B }, 'c2d', 'sasl 2'],
      ['iothubowner', { resource: `${HUB_A}x` }, 'c2d', 'sasl 2'],
      ['registryRead', { resource: HUB_A }, 'c2d', 'sasl 2'],
      ['device', { resource: HUB_A }, 'c2d', 'sasl 2'],
    ] as const
  ).map(([user, claims, link, expected]): Row => {
    const token = policyToken({ policy: user, ...claims });
    const { resource, expiresAt, key } = claims as { resource: string; expiresAt?: number; key?: string };
    const sr = resource.replace(HUB_A, '{hub}').replace(HUB_B, '{other hub}');
    const what = `${user} sr=${sr}${expiresAt ? ' expired' : ''}${key ? ' other key' : ''}`;
    return { path: `SASL PLAIN sas.root, ${link}`, token: what, run: () => saslRoot({ user, token, link }), expected };
  }),
  {
    path: 'SASL PLAIN sas.root, c2d',
    token: 'user "service", token of iothubowner',
    run: () =>
      saslRoot({ user: 'service', token: policyToken({ policy: 'iothubowner', resource: HUB_A }), link: 'c2d' }),
    expected: 'sasl 2',
  },
];

describe('a SAS token is checked for its sr, se and skn on every path', () => {
  it.each(rows)('$path with $token: $expected', async (row) => {
    expect(await row.run()).toBe(row.expected);
  });

  it('keeps every token out of the log', () => {
    const text = JSON.stringify(logs);
    expect(text).not.toMatch(/sig=|SharedAccessSignature /);
    for (const p of POLICIES) expect(text).not.toContain(p.primaryKey);
  });
});
