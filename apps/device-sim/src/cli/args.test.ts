import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { type Command, DEFAULT_TIMEOUT_SECONDS, type Env, parseCommandLine, UsageError } from './args.js';

const GROUP_KEY = 'oiK77Oy7rBw8YB6IS6ukRChAw+Yq6GC61RMrPLSTiOOtdI+XDu0LmLuNm11p+qv2I+adqGUdZHm46zXAQdZoOA==';
const DEVICE_KEY = 'NXZgydIn9ntUpXfBsWFfaxJqAYVfgGQsshvA5GboGJI=';
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const files: Record<string, string> = { 'ca.pem': CA_PEM, 'key.pem': '-----BEGIN PRIVATE KEY-----\n' };
const readFile = (path: string) => {
  const text = files[path];
  if (text === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
  return text;
};

function run(argv: string[], env: Env = {}): Command {
  return parseCommandLine(argv, env, { readFile });
}

function usage(argv: string[], env: Env = {}): UsageError {
  try {
    run(argv, env);
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error(`expected a usage error for ${argv.join(' ')}`);
}

const REGISTER = ['register', '--id-scope', '0ne00000A0A', '--registration-id', 'contoso-toaster-007'];

describe('parseCommandLine: register', () => {
  it('parses flags with defaults for host, transport and timeout', () => {
    expect(run([...REGISTER, '--group-key', GROUP_KEY])).toEqual({
      kind: 'register',
      config: {
        provisioningHost: 'global.azure-devices-provisioning.net',
        idScope: '0ne00000A0A',
        registrationId: 'contoso-toaster-007',
        groupKey: GROUP_KEY,
        transport: 'mqtt',
        timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000,
        retries: 0,
        json: false,
      },
    });
  });

  it('parses every option', () => {
    const command = run([
      ...REGISTER,
      '--device-key',
      DEVICE_KEY,
      '--provisioning-host',
      'localhost:8443',
      '--transport',
      'HTTP',
      '--payload',
      '{"MyDeviceFirmwareVersion":"12.0.2.5"}',
      '--ca',
      'ca.pem',
      '--polling-interval',
      '500',
      '--timeout',
      '0',
      '--retries',
      '5',
      '--json',
    ]);
    expect(command).toEqual({
      kind: 'register',
      config: {
        provisioningHost: 'localhost:8443',
        idScope: '0ne00000A0A',
        registrationId: 'contoso-toaster-007',
        deviceKey: DEVICE_KEY,
        transport: 'http',
        payload: { MyDeviceFirmwareVersion: '12.0.2.5' },
        ca: CA_PEM,
        caFile: 'ca.pem',
        pollingIntervalMs: 500,
        timeoutMs: 0,
        retries: 5,
        json: true,
      },
    });
  });

  it('reads everything from environment variables, and flags win over them', () => {
    const env: Env = {
      DPS_ID_SCOPE: '0ne00000A0A',
      DPS_REGISTRATION_ID: 'contoso-heatpump-088',
      DPS_GROUP_KEY: GROUP_KEY,
      DPS_PROVISIONING_HOST: 'localhost:8883',
      DPS_CA_FILE: 'ca.pem',
      DPS_TRANSPORT: 'http',
      DPS_PAYLOAD: '{"a":1}',
      DPS_POLLING_INTERVAL: '250',
      DPS_TIMEOUT: '30',
    };
    const fromEnv = run(['register'], env);
    expect(fromEnv).toMatchObject({
      kind: 'register',
      config: {
        provisioningHost: 'localhost:8883',
        registrationId: 'contoso-heatpump-088',
        groupKey: GROUP_KEY,
        transport: 'http',
        payload: { a: 1 },
        ca: CA_PEM,
        pollingIntervalMs: 250,
        timeoutMs: 30_000,
      },
    });
    const flagsWin = run(['register', '--registration-id', 'contoso-toaster-007', '--transport', 'mqtt'], env);
    expect(flagsWin).toMatchObject({ config: { registrationId: 'contoso-toaster-007', transport: 'mqtt' } });
  });

  it('lets a key flag override key variables of either kind', () => {
    const env: Env = { DPS_GROUP_KEY: GROUP_KEY, DPS_DEVICE_KEY: DEVICE_KEY };
    const command = run([...REGISTER, '--device-key', DEVICE_KEY], env);
    expect(command).toMatchObject({ config: { deviceKey: DEVICE_KEY } });
    expect(command.kind === 'register' && command.config.groupKey).toBe(undefined);
  });

  it('treats empty environment variables as unset', () => {
    expect(run([...REGISTER, '--group-key', GROUP_KEY], { DPS_TRANSPORT: '', DPS_PAYLOAD: '' })).toMatchObject({
      config: { transport: 'mqtt' },
    });
  });

  it.each([
    ['missing --id-scope (or DPS_ID_SCOPE)', ['register', '--registration-id', 'x', '--group-key', GROUP_KEY]],
    ['missing --registration-id', ['register', '--id-scope', '0ne00000A0A', '--group-key', GROUP_KEY]],
    ['a key is needed: --group-key', [...REGISTER]],
    ['not both', [...REGISTER, '--group-key', GROUP_KEY, '--device-key', DEVICE_KEY]],
    ['--group-key is not valid base64', [...REGISTER, '--group-key', 'abc']],
    ['--payload must be a JSON object', [...REGISTER, '--group-key', GROUP_KEY, '--payload', '[]']],
    ['--payload is not valid JSON', [...REGISTER, '--group-key', GROUP_KEY, '--payload', '{bad']],
    [
      '--transport must be mqtt, mqtt-ws, amqp, amqp-ws or http, not "amqps"',
      [...REGISTER, '--group-key', GROUP_KEY, '--transport', 'amqps'],
    ],
    ['scheme', [...REGISTER, '--group-key', GROUP_KEY, '--provisioning-host', 'mqtts://x']],
    ['the CA file "missing.pem" does not exist', [...REGISTER, '--group-key', GROUP_KEY, '--ca', 'missing.pem']],
    ['is not a PEM certificate', [...REGISTER, '--group-key', GROUP_KEY, '--ca', 'key.pem']],
    ['--timeout must be a whole number', [...REGISTER, '--group-key', GROUP_KEY, '--timeout=-1']],
    ['--timeout needs a value', [...REGISTER, '--group-key', GROUP_KEY, '--timeout', '-1']],
    ['--payload needs a value', [...REGISTER, '--group-key', GROUP_KEY, '--payload']],
    ['--polling-interval must be a whole number', [...REGISTER, '--group-key', GROUP_KEY, '--polling-interval', '0']],
    ['--retries must be a whole number from 0 to 100', [...REGISTER, '--group-key', GROUP_KEY, '--retries', 'many']],
    ['unknown option --bogus', [...REGISTER, '--group-key', GROUP_KEY, '--bogus']],
    ['unexpected argument "extra"', [...REGISTER, '--group-key', GROUP_KEY, 'extra']],
    ['is not an ID scope', ['register', '--id-scope', '0ne/00', '--registration-id', 'x', '--group-key', GROUP_KEY]],
    [
      'may only contain',
      ['register', '--id-scope', '0ne00000A0A', '--registration-id', 'has space', '--group-key', GROUP_KEY],
    ],
  ])('usage error: %s', (message, argv) => {
    const err = usage(argv);
    expect(err.message).toContain(message);
    expect(err.command).toBe('register');
  });

  it('names the environment variable when the bad value came from one', () => {
    expect(usage([...REGISTER], { DPS_GROUP_KEY: 'abc' }).message).toContain('DPS_GROUP_KEY is not valid base64');
    expect(usage([...REGISTER, '--group-key', GROUP_KEY], { DPS_RETRIES: '101' }).message).toContain(
      'DPS_RETRIES must be a whole number from 0 to 100',
    );
    expect(usage([...REGISTER, '--group-key', GROUP_KEY], { DPS_PAYLOAD: '1' }).message).toContain(
      'DPS_PAYLOAD must be a JSON object',
    );
    expect(usage([...REGISTER], { DPS_GROUP_KEY: GROUP_KEY, DPS_DEVICE_KEY: DEVICE_KEY }).message).toContain(
      'both DPS_DEVICE_KEY and DPS_GROUP_KEY are set',
    );
  });

  it('suggests what a near miss probably meant', () => {
    expect(usage([...REGISTER, '--group-key', GROUP_KEY, '--transport', 'mqqt']).suggestion).toBe('--transport mqtt');
    expect(usage([...REGISTER, '--group-key', GROUP_KEY], { DPS_TRANSPORT: 'htp' }).suggestion).toBe(
      'DPS_TRANSPORT=http',
    );
    expect(usage([...REGISTER, '--group-key', GROUP_KEY, '--registraton-id', 'x']).suggestion).toBe(
      '--registration-id',
    );
    expect(usage(['regster']).suggestion).toBe('register');
    expect(usage(['keys', 'derve']).suggestion).toBe('derive');
  });

  it('returns help for --help even with other flags missing', () => {
    expect(run(['register', '--help'])).toEqual({ kind: 'help', topic: 'register' });
  });
});

describe('parseCommandLine: fleet', () => {
  const FLEET = ['fleet', '--id-scope', '0ne00000A0A', '--group-key', GROUP_KEY, '--count', '10'];

  it('parses templates from repeated flags and comma lists', () => {
    const command = run([
      ...FLEET,
      '--registration-id-template',
      'contoso-toaster-{n:3},contoso-heatpump-{n:3}',
      '--registration-id-template',
      'contoso-kettle-{n}',
      '--concurrency',
      '5',
      '--start',
      '7',
      '--workers',
      '3',
      '--no-progress',
    ]);
    expect(command).toMatchObject({
      kind: 'fleet',
      config: {
        count: 10,
        concurrency: 5,
        workers: 3,
        start: 7,
        progress: false,
        templates: ['contoso-toaster-{n:3}', 'contoso-heatpump-{n:3}', 'contoso-kettle-{n}'],
      },
    });
  });

  it('takes the template from DPS_REGISTRATION_ID_TEMPLATE and defaults concurrency, workers and start', () => {
    expect(run(FLEET, { DPS_REGISTRATION_ID_TEMPLATE: 'dev-{n}' })).toMatchObject({
      config: {
        templates: ['dev-{n}'],
        concurrency: 50,
        workers: Math.max(1, availableParallelism() - 1),
        start: 1,
        progress: true,
      },
    });
  });

  it.each([
    [
      'missing --count',
      ['fleet', '--id-scope', '0ne00000A0A', '--group-key', GROUP_KEY, '--registration-id-template', 'a-{n}'],
    ],
    ['--count must be a whole number from 1', [...FLEET.slice(0, -1), '0', '--registration-id-template', 'a-{n}']],
    ['missing --registration-id-template', [...FLEET]],
    ['has no {n}', [...FLEET, '--registration-id-template', 'toaster']],
    ['gives "toaster 1"', [...FLEET, '--registration-id-template', 'toaster {n}']],
    [
      '--concurrency must be a whole number',
      [...FLEET, '--registration-id-template', 'a-{n}', '--concurrency', 'many'],
    ],
    ['--workers must be a whole number from 1', [...FLEET, '--registration-id-template', 'a-{n}', '--workers', '0']],
    [
      'missing --group-key',
      ['fleet', '--id-scope', '0ne00000A0A', '--count', '3', '--registration-id-template', 'a-{n}'],
    ],
    ['unknown option --device-key', [...FLEET, '--registration-id-template', 'a-{n}', '--device-key', DEVICE_KEY]],
  ])('usage error: %s', (message, argv) => {
    const err = usage(argv);
    expect(err.message).toContain(message);
    expect(err.command).toBe('fleet');
  });

  const T = [...FLEET, '--registration-id-template', 'a-{n}'];

  it('takes --payload repeated: the payloads take turns over the devices', () => {
    expect(run([...T, '--payload', '{"site":"north"}', '--payload', '{"site":"south"}'])).toMatchObject({
      config: { payloads: [{ site: 'north' }, { site: 'south' }] },
    });
    // One --payload is every device's, as before; DPS_PAYLOAD when no flag.
    const one = run([...T, '--payload', '{"site":"north"}'], { DPS_PAYLOAD: '{"site":"env"}' });
    expect(one).toMatchObject({ config: { payload: { site: 'north' } } });
    expect((one as { config: object }).config).not.toHaveProperty('payloads');
    expect(run(T, { DPS_PAYLOAD: '{"site":"env"}' })).toMatchObject({ config: { payload: { site: 'env' } } });
  });

  it('takes --payload-file: JSON lines, one payload each, blank lines skipped', () => {
    files['payloads.jsonl'] = '{"site":"north"}\r\n\n{"site":"south","fw":"2.0"}\n{"site":"west"}\n';
    files['one.jsonl'] = '{"site":"north"}\n';
    expect(run([...T, '--payload-file', 'payloads.jsonl'], { DPS_PAYLOAD: 'not json' })).toMatchObject({
      config: { payloads: [{ site: 'north' }, { site: 'south', fw: '2.0' }, { site: 'west' }] },
    });
    expect(run([...T, '--payload-file', 'one.jsonl'])).toMatchObject({ config: { payload: { site: 'north' } } });
  });

  it.each([
    ['--payload (the 2nd) must be a JSON object', [...T, '--payload', '{"a":1}', '--payload', '[1]']],
    ['--payload (the 3rd) is not valid JSON', [...T, '--payload', '{}', '--payload', '{}', '--payload', '{x']],
    [
      'give --payload (one or more) or --payload-file, not both',
      [...T, '--payload', '{}', '--payload-file', 'p.jsonl'],
    ],
    ['--payload-file "missing.jsonl" does not exist', [...T, '--payload-file', 'missing.jsonl']],
    ['--payload-file "bad.jsonl" line 3 must be a JSON object', [...T, '--payload-file', 'bad.jsonl']],
    ['--payload-file "empty.jsonl" holds no payload', [...T, '--payload-file', 'empty.jsonl']],
  ])('payload usage error: %s', (message, argv) => {
    files['bad.jsonl'] = '{"a":1}\n\n"text"\n';
    files['empty.jsonl'] = '\n\n';
    const err = usage(argv);
    expect(err.message).toContain(message);
    expect(err.command).toBe('fleet');
  });
});

describe('parseCommandLine: keys derive, help and version', () => {
  it('parses ids and --json', () => {
    expect(run(['keys', 'derive', '--group-key', GROUP_KEY, 'contoso-toaster-007', '--json'])).toEqual({
      kind: 'keys-derive',
      config: { groupKey: GROUP_KEY, ids: ['contoso-toaster-007'], json: true },
    });
  });

  it('reads the group key from DPS_GROUP_KEY and allows no ids (stdin)', () => {
    expect(run(['keys', 'derive'], { DPS_GROUP_KEY: GROUP_KEY })).toEqual({
      kind: 'keys-derive',
      config: { groupKey: GROUP_KEY, ids: [], json: false },
    });
  });

  it('rejects a missing key, an invalid id and unknown subcommands', () => {
    expect(usage(['keys', 'derive', 'x']).message).toContain('missing --group-key (or DPS_GROUP_KEY)');
    expect(usage(['keys', 'derive', '--group-key', GROUP_KEY, 'bad/id']).message).toContain('may only contain');
    expect(usage(['keys', 'rotate']).message).toContain('unknown keys command "rotate"');
  });

  it('routes help and version', () => {
    expect(run(['--help'])).toEqual({ kind: 'help', topic: 'main' });
    expect(run(['help', 'fleet'])).toEqual({ kind: 'help', topic: 'fleet' });
    expect(run(['help', 'keys', 'derive'])).toEqual({ kind: 'help', topic: 'keys derive' });
    expect(run(['keys', 'derive', '--help'])).toEqual({ kind: 'help', topic: 'keys derive' });
    expect(run(['--version'])).toEqual({ kind: 'version' });
    expect(usage(['provision']).message).toBe('unknown command "provision"');
    expect(usage([]).message).toBe('no command given');
  });
});

describe('parseCommandLine: after provisioning (--connect, --telemetry, --hub-host)', () => {
  const config = (argv: string[], env: Env = {}) => {
    const command = run([...REGISTER, '--group-key', GROUP_KEY, ...argv], env);
    if (command.kind !== 'register') throw new Error('expected register');
    return command.config;
  };

  it('reaches the hub through the emulator by default, the hub itself against Azure', () => {
    expect(config(['--connect', '--provisioning-host', 'localhost:8884']).connect).toEqual({
      telemetryCount: 0,
      transport: 'mqtt',
      gatewayHost: 'localhost:8884',
    });
    expect(config(['--telemetry', '3', '--provisioning-host', 'localhost', '--transport', 'http']).connect).toEqual({
      telemetryCount: 3,
      transport: 'mqtt',
      gatewayHost: 'localhost:8883',
    });
    expect(config(['--connect']).connect).toEqual({ telemetryCount: 0, transport: 'mqtt' });
    expect(config([]).connect).toBeUndefined();
  });

  it('takes --hub-host or DPS_HUB_HOST, and checks it and --telemetry', () => {
    expect(config(['--connect', '--hub-host', 'gateway.local:9883']).connect?.gatewayHost).toBe('gateway.local:9883');
    expect(config(['--connect'], { DPS_HUB_HOST: '[::1]:8883' }).connect?.gatewayHost).toBe('[::1]:8883');
    expect(usage([...REGISTER, '--group-key', GROUP_KEY, '--hub-host', 'mqtts://x']).message).toMatch(/--hub-host/);
    expect(usage([...REGISTER, '--group-key', GROUP_KEY, '--telemetry', 'many']).message).toMatch(/telemetry/);
  });

  it('takes --hub-transport or DPS_HUB_TRANSPORT (implies --connect); the emulator listener it reaches by default', () => {
    const hub = (argv: string[], env: Env = {}) => config(argv, env).connect;
    // The same listener as DPS's: the provisioning host; another: the emulator's default port for it.
    expect(hub(['--hub-transport', 'amqp', '--provisioning-host', 'localhost:8883'])).toEqual({
      telemetryCount: 0,
      transport: 'amqp',
      gatewayHost: 'localhost:5671',
    });
    expect(hub(['--hub-transport', 'AMQP', '--transport', 'amqp', '--provisioning-host', 'localhost:5999'])).toEqual({
      telemetryCount: 0,
      transport: 'amqp',
      gatewayHost: 'localhost:5999',
    });
    for (const transport of ['mqtt-ws', 'amqp-ws', 'http']) {
      expect(hub(['--connect', '--provisioning-host', 'localhost:8883'], { DPS_HUB_TRANSPORT: transport })).toEqual({
        telemetryCount: 0,
        transport,
        gatewayHost: 'localhost:8443',
      });
      expect(
        hub(['--hub-transport', transport, '--transport', 'mqtt-ws', '--provisioning-host', 'localhost:9443']),
      ).toMatchObject({
        gatewayHost: 'localhost:9443',
      });
    }
    expect(hub(['--hub-transport', 'amqp-ws'])).toEqual({ telemetryCount: 0, transport: 'amqp-ws' });
    expect(usage([...REGISTER, '--group-key', GROUP_KEY, '--hub-transport', 'amqps']).message).toMatch(
      /--hub-transport must be mqtt, mqtt-ws, amqp, amqp-ws or http, not "amqps"/,
    );
  });

  it('refuses what HTTP cannot do: methods and desired properties over --hub-transport http', () => {
    for (const flag of [['--method', 'reboot=200'], ['--ack-desired']]) {
      expect(
        usage([...REGISTER, '--group-key', GROUP_KEY, '--stay', '--hub-transport', 'http', ...flag]).message,
      ).toMatch(/--hub-transport http \(IoT Hub's HTTPS device API\) has neither; use mqtt, mqtt-ws, amqp or amqp-ws/);
    }
    const staying = config(['--stay', '--hub-transport', 'http', '--interval', '5']);
    expect(staying.connect?.transport).toBe('http');
    expect(staying.stay).toMatchObject({ telemetryIntervalMs: 5000 });
  });

  it('applies to fleets too', () => {
    const command = run([
      'fleet',
      '--id-scope',
      '0ne00000A0A',
      '--group-key',
      GROUP_KEY,
      '--count',
      '2',
      '--registration-id-template',
      'toaster-{n}',
      '--provisioning-host',
      'localhost:8883',
      '--telemetry',
      '1',
    ]);
    expect(command.kind === 'fleet' && command.config.connect).toEqual({
      telemetryCount: 1,
      transport: 'mqtt',
      gatewayHost: 'localhost:8883',
    });
  });
});

describe('parseCommandLine: register --stay', () => {
  const config = (argv: string[]) => {
    const command = run([...REGISTER, '--group-key', GROUP_KEY, '--provisioning-host', 'localhost:8884', ...argv]);
    if (command.kind !== 'register') throw new Error('expected register');
    return command.config;
  };

  it('connects, and takes method answers, --ack-desired and --interval', () => {
    const parsed = config([
      '--stay',
      '--method',
      'reboot=200:{"rebooting":true}',
      '--method',
      'getLog=404',
      '--method',
      'quiet=none',
      '--method',
      '*=501:"not implemented"',
      '--ack-desired',
      '--interval',
      '5',
    ]);
    expect(parsed.connect).toEqual({ telemetryCount: 0, transport: 'mqtt', gatewayHost: 'localhost:8884' });
    expect(parsed.stay).toEqual({
      methods: {
        reboot: { status: 200, payload: { rebooting: true } },
        getLog: { status: 404 },
        quiet: 'no-answer',
        '*': { status: 501, payload: 'not implemented' },
      },
      acknowledgeDesired: true,
      telemetryIntervalMs: 5000,
    });
    expect(config(['--stay']).stay).toEqual({ methods: {}, acknowledgeDesired: false });
    expect(config(['--connect']).stay).toBeUndefined();
  });

  it.each([
    ['--method needs --stay', ['--method', 'a=200']],
    ['--ack-desired needs --stay', ['--connect', '--ack-desired']],
    ['--interval needs --stay', ['--interval', '5']],
    ['--method "reboot" is not name=status[:json-payload]', ['--stay', '--method', 'reboot']],
    ['--method "reboot": the status must be a whole number from 1', ['--stay', '--method', 'reboot=ok']],
    ['--method "reboot": the status must be a whole number from 1', ['--stay', '--method', 'reboot=0']],
    ['--method "reboot": the payload after "200:" is not JSON', ['--stay', '--method', 'reboot=200:{x']],
    ['--method: "a/b" is not a method name', ['--stay', '--method', 'a/b=200']],
    ['--method "a" is given twice', ['--stay', '--method', 'a=200', '--method', 'a=404']],
    ['--interval must be a whole number from 1 to 86400 (seconds)', ['--stay', '--interval', '0']],
  ])('usage error: %s', (message, argv) => {
    const err = usage([...REGISTER, '--group-key', GROUP_KEY, ...argv]);
    expect(err.message).toContain(message);
    expect(err.command).toBe('register');
  });
});

describe('parseCommandLine: fleet --stay', () => {
  const FLEET = ['fleet', '--id-scope', '0ne00000A0A', '--group-key', GROUP_KEY, '--registration-id-template', 'a-{n}'];

  it('runs every device at once, in one thread, without a progress bar', () => {
    expect(run([...FLEET, '--count', '300', '--stay', '--method', 'reboot=200', '--interval', '60'])).toMatchObject({
      config: {
        count: 300,
        concurrency: 300,
        workers: 1,
        progress: false,
        connect: { telemetryCount: 0, transport: 'mqtt' },
        stay: { methods: { reboot: { status: 200 } }, acknowledgeDesired: false, telemetryIntervalMs: 60_000 },
      },
    });
  });

  it.each([
    ['--stay keeps every device connected: at most 1000 devices (--count 1001)', ['--count', '1001', '--stay']],
    ['--concurrency must be at least --count (10), not 5', ['--count', '10', '--stay', '--concurrency', '5']],
    ['--stay runs the devices in one thread', ['--count', '10', '--stay', '--workers', '2']],
    ['--method needs --stay', ['--count', '10', '--method', 'a=200']],
  ])('usage error: %s', (message, argv) => {
    const err = usage([...FLEET, ...argv]);
    expect(err.message).toContain(message);
    expect(err.command).toBe('fleet');
  });
});
