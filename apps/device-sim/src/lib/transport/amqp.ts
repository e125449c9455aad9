import { Amqp, AmqpBase, AmqpWs } from '../sdk/amqp.js';
import { connectedDeviceTransport, webSocketPortAgent } from './connected-transport.js';
import type { Endpoint } from './endpoint.js';
import type { RegistrationObserver } from './observer.js';
import type { DeviceTransport } from './types.js';

type AmqpBaseInstance = InstanceType<typeof AmqpBase>;
type ConnectConfig = Parameters<AmqpBaseInstance['connect']>[0];
type Done = Parameters<AmqpBaseInstance['connect']>[1];

/**
 * The transport's AMQP base (`azure-iot-amqp-base`, which the transport takes in its constructor),
 * reporting the connection and adding the CA: for symmetric keys the transport passes no TLS options
 * of its own, so without this only NODE_EXTRA_CA_CERTS could make it trust a local CA. Over
 * WebSockets the same options reach the `ws` client.
 */
class ObservedAmqpBase extends AmqpBase {
  constructor(
    private readonly observer: RegistrationObserver,
    private readonly ca: string | undefined,
  ) {
    super(true);
  }

  override connect(config: ConnectConfig, done: Done): void {
    const withCa: ConnectConfig =
      this.ca === undefined
        ? config
        : { ...config, sslOptions: { ...config.sslOptions, ca: this.ca } as ConnectConfig['sslOptions'] };
    let socketError: Error | undefined;
    super.connect(withCa, (err, result) => {
      if (!err) this.observer.connected();
      else attachSocketError(err, socketError);
      done(err, result);
    });
    // rhea opens its socket within connect(): turn Nagle off before the first frame is written.
    noDelay(this);
    // Prepended, so that it runs before the base's own listener, which fails the connect with a bare
    // NotConnectedError('rhea: connection disconnected'): the socket's error (ECONNREFUSED, a TLS
    // failure) is kept for the outcome and its hint, as mqtt-base keeps it. Being a listener, it
    // also stops rhea printing `[connection-1] disconnected CloseEvent {…}` to the console when a
    // WebSocket closes after the base has stopped listening.
    const connection = (this as unknown as AmqpBaseInternals)._rheaConnection;
    connection?.prependListener?.('disconnected', (context) => {
      socketError ??= errorOf(context?.error);
    });
    // A peer that is no AMQP listener (the HTTPS or MQTT port): rhea prints its ProtocolError with
    // the bytes it read, in hex, unless someone listens; the `disconnected` above keeps the error.
    connection?.prependListener?.('protocol_error', () => {});
  }
}

/** The rhea connection AmqpBase keeps (private in its typings). */
interface AmqpBaseInternals {
  _rheaConnection?: {
    socket?: { setNoDelay?: (noDelay: boolean) => unknown };
    prependListener?: (
      event: 'disconnected' | 'protocol_error',
      listener: (context?: { error?: unknown }) => void,
    ) => unknown;
  };
}

/**
 * The Error in what rhea reports a lost connection with: the socket's Error over TLS, ws's
 * ErrorEvent (its `error`) over WebSockets; a CloseEvent carries none.
 */
function errorOf(value: unknown): Error | undefined {
  if (value instanceof Error) return value;
  const inner = typeof value === 'object' && value !== null ? (value as { error?: unknown }).error : undefined;
  return inner instanceof Error ? inner : undefined;
}

/**
 * Gives the base's connect error the socket error behind it as `transportError` (mqtt-base's name
 * for the same), unless it already has one: `describeRegistrationError` reads its `code`.
 */
function attachSocketError(err: Error, socketError: Error | undefined): void {
  const target = err as Error & { transportError?: unknown };
  if (socketError && target !== socketError && target.transportError === undefined) target.transportError = socketError;
}

/**
 * Nagle's algorithm off on rhea's TLS socket (tls.connect takes no `noDelay`). The SDK writes AMQP
 * frames one at a time, several of them small and a moment apart (a flow or disposition, then the
 * next transfer or detach): with Nagle on, each waited in the kernel for the service's delayed ACK
 * of the one before (Linux: 40 ms). Against the local emulator that was ~100 ms of a ~137 ms
 * registration (two such waits, traced at the emulator). Same frames and bytes. Over WebSockets the
 * socket is ws's, which turns Nagle off itself (and rhea's wrapper has no setNoDelay).
 */
function noDelay(base: AmqpBaseInstance): void {
  (base as unknown as AmqpBaseInternals)._rheaConnection?.socket?.setNoDelay?.(true);
}

/**
 * The SDK's AMQP transport (`Amqp`, or `AmqpWs` with `webSocket`). Over TLS `host:port` works as is
 * (`amqps://<provisioningHost>`, port 5671 when none is given). Over WebSockets the transport dials
 * `wss://<host>:443/$iothub/websocket` whatever it is given, so it gets the host name alone and, for
 * another port, a WebSocket agent that connects there (its `webSocketAgent` transport option).
 */
export function createAmqpTransport(
  observer: RegistrationObserver,
  endpoint: Endpoint,
  ca: string | undefined,
  webSocket = false,
): DeviceTransport {
  const base = new ObservedAmqpBase(observer, ca);
  const transport = webSocket ? new AmqpWs(base) : new Amqp(base);
  const agent = webSocketPortAgent(endpoint, ca, webSocket);
  if (agent) transport.setTransportOptions({ webSocketAgent: agent });
  return connectedDeviceTransport(transport, observer, endpoint, webSocket, agent);
}
