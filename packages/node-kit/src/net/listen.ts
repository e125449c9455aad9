import type { Server } from 'node:net';

/** What is to listen where, and the settings a user changes to fix a port that cannot be had. */
export interface ListenTarget {
  /** What listens, as the message names it: `MQTT`, `HTTPS`, `HTTP`. */
  label: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** The flag (and option) that chooses this port, e.g. `--https-port (httpsPort)`. */
  portSetting: string;
  /** The flag that chooses the address; default `--host`. */
  hostSetting?: string;
  /** Another way around a privileged port, said after the port setting, e.g. `or disable HTTPS with --no-https`. */
  lowPortAlternative?: string;
  /** Passed to `server.listen`: refuse to share the port with cluster workers. */
  exclusive?: boolean;
}

/** A port that cannot be listened on; the message says why and how to fix it. */
export class PortError extends Error {
  override readonly name = 'PortError';
  readonly label: string;
  readonly host: string;
  readonly port: number;

  constructor(
    target: ListenTarget,
    /** Node's error code: `EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`, ... */
    readonly code: string,
    detail: string,
  ) {
    const { label, host, port, portSetting } = target;
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    let fix: string;
    if (code === 'EADDRINUSE') {
      fix = `the port is already in use. Stop the process using it, or choose another port with ${portSetting} (0 picks a free one).`;
    } else if (code === 'EACCES') {
      const alternative = target.lowPortAlternative ? ` ${target.lowPortAlternative}` : '';
      fix = `permission denied: ports below 1024 need privileges. Choose another port with ${portSetting}${alternative}, or allow Node to bind low ports: sudo setcap cap_net_bind_service=+ep "$(command -v node)".`;
    } else if (code === 'EADDRNOTAVAIL') {
      fix = `the address ${host} is not available on this machine. Use ${target.hostSetting ?? '--host'} 127.0.0.1 or an address of this machine.`;
    } else {
      fix = detail;
    }
    super(`Cannot listen for ${label} on ${where}: ${fix}`);
    this.label = label;
    this.host = host;
    this.port = port;
  }
}

/** Listens on `target.host:target.port`; resolves with the port bound, rejects with a `PortError`. */
export function listen(server: Server, target: ListenTarget): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(new PortError(target, err.code ?? 'UNKNOWN', err.message));
    };
    const onListening = () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : target.port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port: target.port, host: target.host, exclusive: target.exclusive ?? false });
  });
}
