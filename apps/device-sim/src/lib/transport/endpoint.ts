/** Where the device connects: `provisioningHost` split into the parts each SDK transport needs. */
export interface Endpoint {
  /** Host name or IP address, without brackets. */
  hostname: string;
  port?: number;
  /** `host` or `host:port` (IPv6 in brackets), as the MQTT transport's `mqtts://` URI needs it. */
  hostWithPort: string;
}

export type EndpointParse = { ok: true; value: Endpoint } | { ok: false; message: string };

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/**
 * Accepts `host`, `host:port`, `[ipv6]` and `[ipv6]:port`: the SDK takes a bare host (the "Global device
 * endpoint" of the portal), while local emulators need a port.
 */
export function parseProvisioningHost(value: string, source = '--provisioning-host'): EndpointParse {
  const text = value.trim();
  const fail = (why: string): EndpointParse => ({
    ok: false,
    message: `${source} "${value}" ${why}; give a host name with an optional port, e.g. global.azure-devices-provisioning.net or localhost:8883`,
  });
  if (text === '') return fail('is empty');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return fail('must not include a scheme such as mqtts:// or https://');
  if (text.includes('/')) return fail('must not include a path');
  let hostname: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
    if (!m || !IPV6.test(m[1]!)) return fail('is not a valid bracketed IPv6 address');
    hostname = m[1]!;
    portText = m[2];
  } else {
    const parts = text.split(':');
    if (parts.length > 2) return fail('has more than one ":" (write IPv6 addresses as [::1]:8883)');
    hostname = parts[0]!;
    portText = parts[1];
    if (!HOSTNAME.test(hostname)) return fail('is not a valid host name');
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      return fail(`has an invalid port "${portText}" (1-65535)`);
    }
    port = Number(portText);
  }
  const bracketed = hostname.includes(':') ? `[${hostname}]` : hostname;
  const endpoint: Endpoint = { hostname, hostWithPort: port === undefined ? bracketed : `${bracketed}:${port}` };
  if (port !== undefined) endpoint.port = port;
  return { ok: true, value: endpoint };
}

/** The host name alone, IPv6 in brackets: what transports that add their own port (`:443`) take. */
export function bracketedHost(endpoint: Endpoint): string {
  return endpoint.hostname.includes(':') ? `[${endpoint.hostname}]` : endpoint.hostname;
}
