import type { RegisterOptions } from '../../lib/register.js';
import type { ConnectionConfig } from '../args.js';

export type SharedOptions = Pick<
  RegisterOptions,
  | 'provisioningHost'
  | 'idScope'
  | 'transport'
  | 'payload'
  | 'ca'
  | 'pollingIntervalMs'
  | 'timeoutMs'
  | 'retries'
  | 'groupKey'
  | 'signal'
  | 'connect'
>;

/**
 * What `register` and `fleet` hand on alike to the registration code: the connection settings, the
 * enrollment group key (register may take a device key instead) and the signal that stops them.
 */
export function sharedOptions(config: ConnectionConfig & { groupKey?: string }, signal: AbortSignal): SharedOptions {
  return {
    provisioningHost: config.provisioningHost,
    idScope: config.idScope,
    transport: config.transport,
    payload: config.payload,
    ca: config.ca,
    pollingIntervalMs: config.pollingIntervalMs,
    timeoutMs: config.timeoutMs,
    retries: config.retries,
    groupKey: config.groupKey,
    signal,
    ...(config.connect
      ? {
          connect: {
            telemetryCount: config.connect.telemetryCount,
            ...(config.connect.gatewayHost ? { gatewayHost: config.connect.gatewayHost } : {}),
          },
        }
      : {}),
  };
}
