// The device SDK's first connection to the hub, watched for the socket's error (refused, a name
// that does not resolve, TLS, a port of another protocol): at a wrong --hub-host the user learns
// the cause at once instead of a 60 s timeout (AMQP) or "Not authorized" (MQTT).
import type { SdkTransportClass } from './hub-transport.js';
import { connectKeepingSocketError, socketFailure } from './transport/socket-error.js';

type ConnectDone = (err?: unknown, result?: unknown) => void;
interface ConnectingBase {
  connect: (config: unknown, done: ConnectDone) => void;
}

/** The SDK's retry policy (azure-iot-common's RetryPolicy). */
export interface RetryPolicy {
  shouldRetry(err: Error): boolean;
  nextRetryTimeout(retryCount: number, throttled: boolean): number;
}

export interface FirstConnectionWatch {
  /** The transport class to give the SDK client (it builds the transport itself). */
  transportClass: SdkTransportClass;
  /** The outcome's name and message for the socket error that failed the first connection, if one did. */
  failure(): { errorName: string; errorMessage: string } | undefined;
  /**
   * `policy` (the client's own), except that a first connection failed by a socket error is not
   * retried: azure-iot-device-amqp reports it as NotConnectedError, which the SDK retries for up to
   * 4 minutes (device-sim's 60 s timeout came first); azure-iot-device-mqtt already fails its first
   * connection at once (as UnauthorizedError). Once connected, reconnections are the SDK's as ever.
   */
  retryPolicy(policy: RetryPolicy): RetryPolicy;
}

/**
 * Wraps `base` (the SDK's Mqtt/MqttWs/Amqp/AmqpWs/Http transport) so that each connect of its
 * protocol base (`_mqtt`: azure-iot-mqtt-base, `_amqp`: azure-iot-amqp-base, both private in the
 * typings) keeps the socket's error until the first connection succeeds. mqtt-base has it as its
 * connect error's `transportError`, which azure-iot-device-mqtt then drops ("Failure on first
 * connection (Not authorized): " + message); amqp-base drops it (NotConnectedError('rhea: connection
 * disconnected')): it is taken from rhea's `disconnected` event, as the provisioning transport does.
 * HTTP has no connection to watch (its requests fail with the socket's error already).
 */
export function watchFirstConnection(base: SdkTransportClass): FirstConnectionWatch {
  let connected = false;
  let failed: { errorName: string; errorMessage: string } | undefined;
  const settle = (err: unknown) => {
    if (connected) return;
    if (!err) {
      connected = true;
      failed = undefined;
      return;
    }
    failed = socketFailure(err);
  };
  class Watched extends base {
    // biome-ignore lint/suspicious/noExplicitAny: the SDK's transport constructors differ per package
    constructor(...args: any[]) {
      super(...args);
      const self = this as { _mqtt?: ConnectingBase; _amqp?: ConnectingBase };
      if (self._amqp) watchAmqpBase(self._amqp, settle);
      else if (self._mqtt) watchMqttBase(self._mqtt, settle);
    }
  }
  return {
    transportClass: Watched,
    failure: () => failed,
    retryPolicy: (policy) => ({
      shouldRetry: (err) => (connected || failed === undefined) && policy.shouldRetry(err),
      nextRetryTimeout: (retryCount, throttled) => policy.nextRetryTimeout(retryCount, throttled),
    }),
  };
}

function watchAmqpBase(amqp: ConnectingBase, settle: (err: unknown) => void): void {
  const connect = amqp.connect.bind(amqp);
  amqp.connect = (config, done) =>
    connectKeepingSocketError(amqp, connect, config, (err, result) => {
      settle(err);
      done(err, result);
    });
}

function watchMqttBase(mqtt: ConnectingBase, settle: (err: unknown) => void): void {
  const connect = mqtt.connect.bind(mqtt);
  mqtt.connect = (config, done) =>
    connect(config, (err, result) => {
      settle(err);
      done(err, result);
    });
}
