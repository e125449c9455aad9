import type { RegisterOptions } from '../../lib/register.js';
import type { ConnectionConfig } from '../args.js';

export type ConnectionOptions = Pick<
  RegisterOptions,
  'provisioningHost' | 'idScope' | 'transport' | 'payload' | 'ca' | 'pollingIntervalMs' | 'timeoutMs'
>;

/** The connection settings `register` and `fleet` hand on alike to the registration code. */
export function connectionOptions(config: ConnectionConfig): ConnectionOptions {
  return {
    provisioningHost: config.provisioningHost,
    idScope: config.idScope,
    transport: config.transport,
    payload: config.payload,
    ca: config.ca,
    pollingIntervalMs: config.pollingIntervalMs,
    timeoutMs: config.timeoutMs,
  };
}
