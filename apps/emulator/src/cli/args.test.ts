import { describe, expect, it } from 'vitest';
import { parseCliArgs, UsageError } from './args.js';

describe('parseCliArgs', () => {
  it('parses the web view flags: port and host, or none', () => {
    expect(parseCliArgs(['start', '--web-port', '0', '--web-host', '0.0.0.0'])).toMatchObject({
      webView: { port: 0, host: '0.0.0.0' },
    });
    expect(parseCliArgs(['start', '--no-web'])).toMatchObject({ webView: false });
    expect(parseCliArgs(['start'])).not.toHaveProperty('webView');
    expect(() => parseCliArgs(['start', '--no-web', '--web-port', '1'])).toThrow(/--no-web and --web-port/);
    expect(() => parseCliArgs(['start', '--web-port', '70000'])).toThrow(/--web-port must be a port number/);
  });

  it('parses the issuing CA for certificate issuance', () => {
    expect(
      parseCliArgs(['start', '--issuing-ca', 'ca.pem', '--issuing-ca-key', 'ca.key.pem', '--issued-cert-days', '90']),
    ).toMatchObject({ issuingCa: { certFile: 'ca.pem', keyFile: 'ca.key.pem', days: 90 } });
  });

  it('parses --attempt-history from 0 to 1,000,000', () => {
    expect(parseCliArgs(['start', '--attempt-history', '0'])).toMatchObject({ attemptHistory: 0 });
    expect(parseCliArgs(['start', '--attempt-history', '1000000'])).toMatchObject({ attemptHistory: 1_000_000 });
    expect(parseCliArgs(['start'])).not.toHaveProperty('attemptHistory');
  });

  it('parses start with every option', () => {
    expect(
      parseCliArgs([
        'start',
        '--config',
        'dps.yaml',
        '--state-dir',
        's',
        '--host',
        '0.0.0.0',
        '--mqtt-port',
        '0',
        '--https-port',
        '8443',
        '--tls-name',
        'a.local',
        '--tls-name',
        '10.0.0.5',
        '--retry-after',
        '0',
        '--webhook-timeout',
        '5000',
        '--webhook-retries',
        '2',
        '--webhook-retry-interval',
        '100',
        '--webhook-retry-increment',
        '0',
        '--amqp-port',
        '5672',
        '--idle-timeout',
        '30000',
        '--max-connections',
        '500',
        '--max-individual-enrollments',
        '5000',
        '--max-enrollment-groups',
        '7',
        '--log-format',
        'json',
        '--log-level',
        'debug',
      ]),
    ).toEqual({
      command: 'start',
      config: 'dps.yaml',
      stateDir: 's',
      host: '0.0.0.0',
      mqttPort: 0,
      httpsPort: 8443,
      amqpPort: 5672,
      tlsNames: ['a.local', '10.0.0.5'],
      retryAfterSeconds: 0,
      webhookTimeoutMs: 5000,
      webhookRetry: { count: 2, initialIntervalMs: 100, incrementMs: 0 },
      limits: { idleTimeoutMs: 30000, maxConnections: 500, maxIndividualEnrollments: 5000, maxEnrollmentGroups: 7 },
      logFormat: 'json',
      logLevel: 'debug',
    });
    expect(
      parseCliArgs(['start', '--no-https', '--no-amqp', '--webhook-url', 'http://localhost:7071/api/allocate']),
    ).toEqual({
      command: 'start',
      tlsNames: [],
      httpsPort: false,
      amqpPort: false,
      webhookUrl: 'http://localhost:7071/api/allocate',
    });
    expect(parseCliArgs(['--help'])).toEqual({ command: 'help' });
    expect(parseCliArgs(['-v'])).toEqual({ command: 'version' });
  });

  it.each([
    [[], 'Missing the command'],
    [['stop'], 'unknown command "stop"'],
    [['start', 'extra'], 'Unexpected argument "extra"'],
    [['start', '--mqtt-port', '70000'], '--mqtt-port must be a port number from 0 to 65535, not "70000"'],
    [['start', '--https-port', 'abc'], '--https-port must be a port number'],
    [['start', '--no-https', '--https-port', '1'], '--no-https and --https-port exclude each other'],
    [['start', '--no-amqp', '--amqp-port', '1'], '--no-amqp and --amqp-port exclude each other'],
    [['start', '--amqp-port', '5671.5'], '--amqp-port must be a port number'],
    [['start', '--retry-after=-1'], '--retry-after must be a whole number of seconds from 0 to 300, not "-1".'],
    [['start', '--retry-after', '0.2'], 'not "0.2" (the Python and C SDKs cannot parse fractions; use 0'],
    [['start', '--retry-after', '301'], 'from 0 to 300, not "301"'],
    [['start', '--retry-after', '1e1'], 'from 0 to 300, not "1e1"'],
    [['start', '--webhook-url', 'localhost:7071'], 'is not an http or https URL'],
    [['start', '--config', 'x.yaml', '--webhook-url', 'http://h/'], 'with --config, set the webhook in the file'],
    [['start', '--webhook-retries', '1.5'], '--webhook-retries must be a whole number >= 0, not "1.5"'],
    [['start', '--webhook-retry-interval=-1'], '--webhook-retry-interval must be a whole number >= 0'],
    [['start', '--log-format', 'xml'], '--log-format must be pretty or json'],
    [
      ['start', '--attempt-history', '1000001'],
      '--attempt-history must be a whole number of attempts from 0 to 1000000 (0 keeps none), not 1000001.',
    ],
    [
      ['start', '--attempt-history=-1'],
      '--attempt-history must be a whole number of attempts from 0 to 1000000 (0 keeps none), not "-1".',
    ],
    [['start', '--attempt-history', '2.5'], 'not "2.5"'],
    [['start', '--attempt-history', '1e4'], 'not "1e4"'],
    [['start', '--issuing-ca', 'ca.pem'], '--issuing-ca and --issuing-ca-key go together'],
    [['start', '--issuing-ca-key', 'ca.key.pem'], '--issuing-ca and --issuing-ca-key go together'],
    [['start', '--issued-cert-days', '7'], '--issued-cert-days needs --issuing-ca and --issuing-ca-key'],
    [
      ['start', '--issuing-ca', 'a', '--issuing-ca-key', 'b', '--issued-cert-days', '0'],
      '--issued-cert-days must be a whole number of days from 1 to 3650, not "0".',
    ],
    [['start', '--frobnicate'], 'unknown option --frobnicate'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseCliArgs(argv)).toThrow(UsageError);
    expect(() => parseCliArgs(argv)).toThrow(message);
  });

  it.each([
    [['strat'], 'start'],
    [['start', '--mqtt-prot', '1'], '--mqtt-port'],
    [['start', '--log-level', 'warning'], '--log-level warn'],
  ])('suggests what %j probably meant', (argv, suggestion) => {
    expect(() => parseCliArgs(argv)).toThrow(expect.objectContaining({ suggestion }));
  });
});
