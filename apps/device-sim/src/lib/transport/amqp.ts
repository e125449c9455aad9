import { Amqp, AmqpBase, AmqpWs } from '../sdk/amqp.js';
import { connectedDeviceTransport, webSocketPortAgent } from './connected-transport.js';
import type { Endpoint } from './endpoint.js';
import type { RegistrationObserver } from './observer.js';
import { connectKeepingSocketError, rheaConnectionOf } from './socket-error.js';
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
    connectKeepingSocketError(this, super.connect.bind(this), withCa, (err, result) => {
      if (!err) this.observer.connected();
      done(err, result);
    });
    // rhea opens its socket within connect(): turn Nagle off before the first frame is written.
    noDelay(this);
  }
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
  rheaConnectionOf(base)?.socket?.setNoDelay?.(true);
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
