import type { HubSession } from '../../lib/hub.js';
import type { RegistrationOutcome, TransportName } from '../../lib/types.js';

export interface HintContext {
  provisioningHost: string;
  transport: TransportName;
  caGiven: boolean;
}

const UNTRUSTED_CERT = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/**
 * The emulator's (and DPS's) listener each transport dials: its name as the emulator's banner prints
 * it, what it speaks, and the port the SDK dials when --provisioning-host names none (the WebSocket
 * transports run on the HTTPS listener).
 */
const LISTENERS: Record<TransportName, { name: string; protocol: string; defaultPort: number }> = {
  mqtt: { name: 'MQTT', protocol: 'MQTT over TLS', defaultPort: 8883 },
  amqp: { name: 'AMQP', protocol: 'AMQP over TLS', defaultPort: 5671 },
  http: { name: 'HTTPS', protocol: 'HTTPS', defaultPort: 443 },
  'mqtt-ws': { name: 'HTTPS', protocol: 'HTTPS (MQTT over WebSockets)', defaultPort: 443 },
  'amqp-ws': { name: 'HTTPS', protocol: 'HTTPS (AMQP over WebSockets)', defaultPort: 443 },
};

/** Where a connection was made to: the host, the option that sets it, and the transport. */
interface Target {
  host: string;
  /** The option naming the host (`--provisioning-host`, `--hub-host`). */
  option: string;
  transport: TransportName;
  /** The option naming the transport (`--transport`, `--hub-transport`). */
  transportOption: string;
  caGiven: boolean;
}

/**
 * One sentence for a connection that could not be made (the socket's error code, rhea's
 * ProtocolError): the same causes on the way to DPS and to the hub, each named by its own option.
 */
function connectionHint(name: string, target: Target): string | undefined {
  const { host, option } = target;
  if (UNTRUSTED_CERT.has(name)) {
    return target.caGiven
      ? `the server certificate of ${host} was not issued by the CA in --ca; pass the CA that signed it (the local emulator prints its CA file when it starts)`
      : `the server certificate of ${host} is not trusted: pass --ca <file> (or DPS_CA_FILE) with the CA that signed it, e.g. --ca .dpskit/emulator/tls/ca.pem for the local emulator`;
  }
  if (name === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the server certificate does not name the host in ${option} "${host}"; use a name it was issued for (the local emulator's certificate covers localhost and 127.0.0.1)`;
  }
  if (name === 'CERT_HAS_EXPIRED') return `the server certificate of ${host} has expired`;
  const listener = LISTENERS[target.transport];
  if (name === 'ECONNREFUSED') {
    const dialed = host.includes(':') ? host : `${host}:${listener.defaultPort}`;
    return `nothing accepts connections at ${dialed}: is the emulator running, and is ${option} the ${listener.name} port it printed?`;
  }
  if (name === 'ENOTFOUND' || name === 'EAI_AGAIN') return `the host name in ${option} "${host}" cannot be resolved`;
  if (name === 'ECONNRESET' || name === 'EPROTO' || name.startsWith('ERR_SSL_')) {
    return `the connection to ${host} broke off: check that the port speaks ${listener.protocol} for ${target.transportOption} ${target.transport}`;
  }
  if (name === 'ProtocolError') return wrongProtocolHint(target);
  return undefined;
}

/** Another listener of the emulator (or another server) answered at the target: its port speaks something else. */
function wrongProtocolHint({ host, option, transport }: Target): string {
  const listener = LISTENERS[transport];
  return `${host} does not answer in ${listener.protocol}: is ${option} the ${listener.name} port the emulator printed?`;
}

/** What a hint goes on: one device's outcome, or a fleet summary's row of outcomes alike. */
export type OutcomeFacts = Pick<RegistrationOutcome, 'status' | 'errorCode' | 'errorName' | 'errorMessage'>;

/**
 * DPS's 400207 message when it could not reach the webhook (refused, reset, DNS): the real service's
 * text, which the emulator sends too (`@dpskit/contracts`' `DpsErrorMessage.customAllocationConnectionFailed`;
 * that entry loads zod, which no command loads on the way to an outcome).
 */
const WEBHOOK_UNREACHABLE = 'An error occurred while sending the request.';

/** The 400207 hint: the webhook answered an error status, could not be reached, or was too slow. */
function webhookFailedHint(message: string | undefined): string {
  if (message === WEBHOOK_UNREACHABLE) {
    return "the service could not reach the custom allocation webhook: is your Function running, at the enrollment's webhookUrl (host, port, route)?";
  }
  if (message?.includes('did not answer within')) {
    return "the custom allocation webhook did not answer in time: its log says what it was doing (the local emulator's limit is --webhook-timeout)";
  }
  // DPS's own words carry the status ("… with status code: 400"); the emulator's other 400207 texts
  // say what was wrong with a 2xx answer (not JSON, not an allocation response, a hub not linked).
  if (message === undefined || /status code: \d+/.test(message)) {
    return 'the custom allocation webhook answered with an error status: its log says why';
  }
  return "the custom allocation webhook answered, but not with an answer the service could use: the message says what was wrong, the webhook's log what it returned";
}

/** One sentence telling the user what to change, for outcomes where the cause is usually on their side. */
export function hintFor(outcome: OutcomeFacts, context: HintContext): string | undefined {
  const name = outcome.errorName ?? '';
  const host = context.provisioningHost;
  const target: Target = {
    host,
    option: '--provisioning-host',
    transport: context.transport,
    transportOption: '--transport',
    caGiven: context.caGiven,
  };
  const connection = connectionHint(name, target);
  if (connection) return connection;
  const listener = LISTENERS[context.transport];
  // The SDK's own words for a port that speaks something else (no socket error to go on).
  if (
    (name === 'NotConnectedError' && context.transport.startsWith('amqp')) ||
    (context.transport.startsWith('mqtt') && /Unacceptable protocol version/.test(outcome.errorMessage ?? ''))
  ) {
    return wrongProtocolHint(target);
  }
  if (
    name === 'UnauthorizedError' ||
    (outcome.errorCode !== undefined && Math.floor(outcome.errorCode / 1000) === 401)
  ) {
    return 'the service rejected the device credentials: check --id-scope, --registration-id and the key (an enrollment group key goes in --group-key, a device key in --device-key)';
  }
  if (name === 'TimeoutError') {
    return `no final answer in time: check that --provisioning-host points at the ${listener.name} port of the service, and the allocation webhook's log`;
  }
  if (outcome.errorCode === 400207) return webhookFailedHint(outcome.errorMessage);
  if (outcome.errorCode === 400208) return 'the custom allocation webhook returned no iotHubHostName';
  if (outcome.errorCode === 400209) {
    return 'the custom allocation webhook refused DPS (401): check the function key (?code=) in the webhook URL';
  }
  if (outcome.status === 'disabled') return 'enable the enrollment (provisioningStatus "enabled") and register again';
  return undefined;
}

export interface HubHintContext {
  /** `--hub-host`; undefined: the device dialed its hub by the hub's own name. */
  hubHost: string | undefined;
  hubTransport: TransportName;
  caGiven: boolean;
}

/**
 * The hint for a device that was assigned but could not get onto its hub: a connection that could
 * not be made (a wrong --hub-host, mostly), or no answer in time.
 */
export function hubHintFor(
  session: Pick<HubSession, 'status' | 'errorName' | 'hub'>,
  context: HubHintContext,
): string | undefined {
  if (session.status !== 'error') return undefined;
  const name = session.errorName ?? '';
  const host = context.hubHost ?? session.hub;
  const connection = connectionHint(name, {
    host,
    option: '--hub-host',
    transport: context.hubTransport,
    transportOption: '--hub-transport',
    caGiven: context.caGiven,
  });
  if (connection) return connection;
  if (name === 'TimeoutError') {
    return `no answer from the hub in time: check that --hub-host points at the ${LISTENERS[context.hubTransport].name} port of the emulator (or your gateway)`;
  }
  return undefined;
}
