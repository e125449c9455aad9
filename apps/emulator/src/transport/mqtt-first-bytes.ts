/**
 * What a connection's first bytes say when they are not MQTT (pure). An MQTT 3.1.1 client opens with
 * CONNECT (packet type 1: first byte 0x10); anything else is another protocol on the MQTT port, which
 * aedes would only drop with a parse error at debug level.
 */
export type ForeignProtocol = { protocol: 'http' | 'amqp' | 'unknown'; firstBytes: string };

export function foreignProtocol(chunk: Uint8Array): ForeignProtocol | undefined {
  if (chunk.length === 0 || chunk[0] === 0x10) return undefined;
  const bytes = Buffer.from(chunk.subarray(0, 16));
  const text = bytes.toString('latin1');
  const protocol = /^(GET|POST|PUT|HEAD|DELETE|OPTIONS|PATCH|CONNECT|TRACE) /.test(text)
    ? 'http'
    : text.startsWith('AMQP')
      ? 'amqp'
      : 'unknown';
  const firstBytes = Array.from(bytes, (b) =>
    b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`,
  ).join('');
  return { protocol, firstBytes };
}
