// IoT Hub connection strings (`HostName=…;DeviceId=…;SharedAccessKey=…`): the few fields the
// device helper reads or sets. Values may contain '=' (base64 keys): only the first one splits.
// Nothing here puts a connection string (a key) into an error message.

export function parseConnectionString(connectionString: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error('@dpskit/emulator/sdk: the connection string has a part that is not name=value');
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1));
  }
  return fields;
}

export function formatConnectionString(fields: ReadonlyMap<string, string>): string {
  return [...fields].map(([name, value]) => `${name}=${value}`).join(';');
}

/** The connection string with `GatewayHostName` set to `gateway` (replacing one it had). */
export function withGatewayHostName(connectionString: string, gateway: string): string {
  const fields = parseConnectionString(connectionString);
  fields.set('GatewayHostName', gateway);
  return formatConnectionString(fields);
}

/** A field the device helper needs, or an error naming it (never the connection string). */
export function requireField(fields: ReadonlyMap<string, string>, name: string): string {
  const value = fields.get(name);
  if (!value) throw new Error(`@dpskit/emulator/sdk: the connection string has no ${name}`);
  return value;
}
