import { describe, expect, it } from 'vitest';
import { decideUpgrade } from './websocket-upgrade.js';

describe('decideUpgrade', () => {
  const both = ['mqtt', 'amqp'] as const;

  it('accepts the SDKs subprotocols at /$iothub/websocket, echoing the client spelling', () => {
    expect(decideUpgrade('/$iothub/websocket', 'websocket', 'mqtt', both)).toEqual({
      kind: 'accept',
      protocol: 'mqtt',
      offered: 'mqtt',
    });
    expect(decideUpgrade('/$iothub/websocket?iothub-no-client-cert=true', 'WebSocket', 'AMQPWSB10', both)).toEqual({
      kind: 'accept',
      protocol: 'amqp',
      offered: 'AMQPWSB10',
    });
    // The C SDK says MQTT.
    expect(decideUpgrade('/$iothub/websocket', 'websocket', 'MQTT', both)).toMatchObject({ offered: 'MQTT' });
    // The first served one of several offered.
    expect(decideUpgrade('/$iothub/websocket', 'websocket', 'stomp, AMQPWSB10, mqtt', both)).toMatchObject({
      protocol: 'amqp',
    });
  });

  it('takes AMQP only at /$servicebus/websocket (@azure/event-hubs), and leaves it alone without AMQP', () => {
    expect(decideUpgrade('/$servicebus/websocket', 'websocket', 'AMQPWSB10', both)).toEqual({
      kind: 'accept',
      protocol: 'amqp',
      offered: 'AMQPWSB10',
    });
    expect(decideUpgrade('/$servicebus/websocket', 'websocket', 'mqtt', both)).toMatchObject({
      kind: 'refuse',
      message: expect.stringContaining('/$servicebus/websocket; use AMQPWSB10'),
    });
    expect(decideUpgrade('/$servicebus/websocket', 'websocket', 'AMQPWSB10', ['mqtt'])).toEqual({ kind: 'not-mine' });
  });

  it('leaves other paths to other handlers', () => {
    expect(decideUpgrade('/other', 'websocket', 'mqtt', both)).toEqual({ kind: 'not-mine' });
    expect(decideUpgrade('/$iothub/websocket/x', 'websocket', 'mqtt', both)).toEqual({ kind: 'not-mine' });
  });

  it('refuses an unknown subprotocol, or none, naming the ones served', () => {
    expect(decideUpgrade('/$iothub/websocket', 'websocket', 'stomp', both)).toEqual({
      kind: 'refuse',
      status: 400,
      message: 'The WebSocket subprotocol "stomp" is not served at /$iothub/websocket; use mqtt or AMQPWSB10.',
    });
    expect(decideUpgrade('/$iothub/websocket', 'websocket', undefined, ['mqtt'])).toMatchObject({
      kind: 'refuse',
      message: expect.stringContaining('needs the subprotocol mqtt (Sec-WebSocket-Protocol); none was offered'),
    });
    // A protocol not served on this emulator (AMQP turned off) is refused like an unknown one.
    expect(decideUpgrade('/$iothub/websocket', 'websocket', 'AMQPWSB10', ['mqtt'])).toMatchObject({
      kind: 'refuse',
    });
  });

  it('refuses an upgrade to something other than WebSocket', () => {
    expect(decideUpgrade('/$iothub/websocket', 'h2c', 'mqtt', both)).toMatchObject({
      kind: 'refuse',
      message: expect.stringContaining('not "h2c"'),
    });
  });
});
