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

/** One sentence telling the user what to change, for outcomes where the cause is usually on their side. */
export function hintFor(outcome: RegistrationOutcome, context: HintContext): string | undefined {
  const name = outcome.errorName ?? '';
  const host = context.provisioningHost;
  if (UNTRUSTED_CERT.has(name)) {
    return context.caGiven
      ? `the server certificate of ${host} was not issued by the CA in --ca; pass the CA that signed it (the local emulator prints its CA file when it starts)`
      : `the server certificate of ${host} is not trusted: pass --ca <file> (or DPS_CA_FILE) with the CA that signed it, e.g. --ca .dpskit/emulator/tls/ca.pem for the local emulator`;
  }
  if (name === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the server certificate does not name the host in --provisioning-host "${host}"; use a name it was issued for (the local emulator's certificate covers localhost and 127.0.0.1)`;
  }
  if (name === 'CERT_HAS_EXPIRED') return `the server certificate of ${host} has expired`;
  const listener = LISTENERS[context.transport];
  if (name === 'ECONNREFUSED') {
    const dialed = host.includes(':') ? host : `${host}:${listener.defaultPort}`;
    return `nothing accepts connections at ${dialed}: is the emulator running, and is --provisioning-host the ${listener.name} port it printed?`;
  }
  if (name === 'ENOTFOUND' || name === 'EAI_AGAIN') {
    return `the host name in --provisioning-host "${host}" cannot be resolved`;
  }
  if (name === 'ECONNRESET' || name === 'EPROTO' || name === 'ERR_SSL_WRONG_VERSION_NUMBER') {
    return `the connection to ${host} broke off: check that the port speaks ${listener.protocol} for --transport ${context.transport}`;
  }
  // Another listener of the emulator (or another server) answered: the port speaks something else.
  if (
    name === 'ProtocolError' ||
    (name === 'NotConnectedError' && context.transport.startsWith('amqp')) ||
    (context.transport.startsWith('mqtt') && /Unacceptable protocol version/.test(outcome.errorMessage ?? ''))
  ) {
    return `${host} does not answer in ${listener.protocol}: is --provisioning-host the ${listener.name} port the emulator printed?`;
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
  if (outcome.errorCode === 400207) {
    return 'the custom allocation webhook answered with an error status: its log says why';
  }
  if (outcome.errorCode === 400208) return 'the custom allocation webhook returned no iotHubHostName';
  if (outcome.errorCode === 400209) {
    return 'the custom allocation webhook refused DPS (401): check the function key (?code=) in the webhook URL';
  }
  if (outcome.status === 'disabled') return 'enable the enrollment (provisioningStatus "enabled") and register again';
  return undefined;
}
