import https from 'node:https';
import type { SecureContext, TLSSocket } from 'node:tls';
import { Http, HttpBase } from '../sdk/http.js';
import type { Endpoint } from './endpoint.js';
import { ObservedRequests } from './observed-requests.js';
import type { RegistrationObserver } from './observer.js';
import type { DeviceTransport } from './types.js';

type HttpBaseInstance = InstanceType<typeof HttpBase>;
type BuildRequest = HttpBaseInstance['buildRequest'];

class ObservedHttpBase extends HttpBase {
  constructor(private readonly observer: RegistrationObserver) {
    super();
  }

  // A fresh TLS handshake is the HTTP transport's "connected"; a kept-alive socket was reported already.
  override buildRequest(...args: Parameters<BuildRequest>): ReturnType<BuildRequest> {
    const request = super.buildRequest(...args);
    request.once('socket', (socket) => {
      const tlsSocket = socket as TLSSocket;
      if (tlsSocket.connecting) tlsSocket.once('secureConnect', () => this.observer.connected());
    });
    return request;
  }
}

/**
 * The SDK's HTTP transport with an injected `azure-iot-http-base` whose agent carries the CA and the
 * port: the transport passes `provisioningHost` as the request's `host` and never a port (always 443),
 * so `localhost:8443` must become host `localhost` + `agent.defaultPort = 8443` (protocol notes §2.4).
 * Each device gets its own agent, hence its own connection, kept alive across register and polls
 * like Node 20's global agent does for the stock SDK.
 */
export function createHttpTransport(
  observer: RegistrationObserver,
  endpoint: Endpoint,
  ca: string | undefined,
  tlsContext?: SecureContext,
): DeviceTransport {
  const agentOptions: https.AgentOptions = { keepAlive: true };
  if (ca !== undefined) agentOptions.ca = ca;
  // The agent hands its options to tls.connect, which then uses this context instead of building one.
  if (tlsContext) agentOptions.secureContext = tlsContext;
  const agent = new https.Agent(agentOptions);
  // `defaultPort` is public on Node's Agent but missing from @types/node.
  if (endpoint.port !== undefined) (agent as https.Agent & { defaultPort: number }).defaultPort = endpoint.port;
  const base = new ObservedHttpBase(observer);
  base.setOptions({ http: { agent } });
  const transport = new Http(base);
  const requests = new ObservedRequests(transport, observer);
  transport.on('error', () => {});
  return {
    sdkTransport: transport,
    sdkHost: endpoint.hostname,
    abort(): Promise<void> {
      requests.aborted = true;
      agent.destroy();
      return Promise.resolve();
    },
    dispose(): void {
      agent.destroy();
    },
  };
}
