import type { Server } from 'node:net';

export type TransportName = 'mqtt' | 'https';

const FLAG: Record<TransportName, string> = { mqtt: '--mqtt-port (mqttPort)', https: '--https-port (httpsPort)' };

/** A port the emulator cannot listen on; the message says why and how to fix it. */
export class PortError extends Error {
  override readonly name = 'PortError';
  constructor(
    readonly transport: TransportName,
    readonly host: string,
    readonly port: number,
    readonly code: string,
    detail: string,
  ) {
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const label = transport === 'mqtt' ? 'MQTT' : 'HTTPS';
    let fix: string;
    if (code === 'EADDRINUSE') {
      fix = `the port is already in use. Stop the process using it, or choose another port with ${FLAG[transport]} (0 picks a free one).`;
    } else if (code === 'EACCES') {
      fix =
        `permission denied: ports below 1024 need privileges. Choose another port with ${FLAG[transport]}` +
        (transport === 'https'
          ? ' (the Node HTTP transport then needs an https.Agent with defaultPort, see the README) or disable HTTPS with --no-https,'
          : ',') +
        ` or allow Node to bind low ports: sudo setcap cap_net_bind_service=+ep "$(command -v node)".`;
    } else if (code === 'EADDRNOTAVAIL') {
      fix = `the address ${host} is not available on this machine. Use --host 127.0.0.1 or an address of this machine.`;
    } else {
      fix = detail;
    }
    super(`Cannot listen for ${label} on ${where}: ${fix}`);
  }
}

export function listen(server: Server, transport: TransportName, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(new PortError(transport, host, port, err.code ?? 'UNKNOWN', err.message));
    };
    const onListening = () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}
