import type { Logger } from '@dpskit/node-kit';
import { describe, expect, it } from 'vitest';
import { logTlsClientError } from './tls-client-errors.js';

type Line = [level: 'debug' | 'info' | 'warn' | 'error', event: string, msg: string, fields?: Record<string, unknown>];

const recording = (): { log: Logger; lines: Line[] } => {
  const lines: Line[] = [];
  const log: Logger = {
    debug: (event, msg, fields) => lines.push(['debug', event, msg, fields]),
    info: (event, msg, fields) => lines.push(['info', event, msg, fields]),
    warn: (event, msg, fields) => lines.push(['warn', event, msg, fields]),
    error: (event, msg, fields) => lines.push(['error', event, msg, fields]),
  };
  return { log, lines };
};

const tlsError = (message: string, code?: string): NodeJS.ErrnoException =>
  Object.assign(new Error(message), code ? { code } : {});

describe('logTlsClientError', () => {
  it.each([
    ['wrong version number', 'ERR_SSL_WRONG_VERSION_NUMBER'],
    ['http request', 'ERR_SSL_HTTP_REQUEST'],
    ['unknown protocol', 'ERR_SSL_UNKNOWN_PROTOCOL'],
    ['packet length too long', 'ERR_SSL_PACKET_LENGTH_TOO_LONG'],
  ])('warns that a client whose handshake failed with "%s" did not speak TLS, naming the scheme', (reason, code) => {
    const { log, lines } = recording();
    const message = `C0:error:0A00010B:SSL routines:ssl3_get_record:${reason}`;
    logTlsClientError(log, { kind: 'mqtt', port: 'MQTT', scheme: 'mqtts' })(tlsError(message, code));
    expect(lines).toEqual([
      [
        'warn',
        'mqtt.protocol',
        `a client on the MQTT port did not speak TLS (${message}): use mqtts:// with the emulator's CA`,
        { code },
      ],
    ]);
  });

  it('matches the reasons case-insensitively', () => {
    const { log, lines } = recording();
    logTlsClientError(log, { kind: 'amqp', port: 'AMQP', scheme: 'amqps' })(tlsError('HTTP REQUEST'));
    expect(lines).toEqual([
      [
        'warn',
        'amqp.protocol',
        "a client on the AMQP port did not speak TLS (HTTP REQUEST): use amqps:// with the emulator's CA",
        { code: undefined },
      ],
    ]);
  });

  it('logs any other failed handshake as a debug line under <kind>.tls', () => {
    const { log, lines } = recording();
    logTlsClientError(log, { kind: 'https', port: 'HTTPS', scheme: 'https' })(
      tlsError('Client network socket disconnected before secure TLS connection was established', 'ECONNRESET'),
    );
    expect(lines).toEqual([
      [
        'debug',
        'https.tls',
        'TLS handshake failed: Client network socket disconnected before secure TLS connection was established',
        undefined,
      ],
    ]);
  });
});
