import type { HubEvent, StayOptions } from '../../lib/hub.js';
import type { RegisterOptions } from '../../lib/register.js';
import type { ConnectionConfig, StayConfig } from '../args.js';

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
            transport: config.connect.transport,
            ...(config.connect.gatewayHost ? { gatewayHost: config.connect.gatewayHost } : {}),
          },
        }
      : {}),
  };
}

/**
 * `--stay`'s library options for `register` and `fleet` alike: the answers, the ack, the interval,
 * and where each event goes.
 */
export function stayOptions(stay: StayConfig, onEvent: (event: HubEvent) => void): StayOptions {
  return {
    methods: stay.methods,
    acknowledgeDesired: stay.acknowledgeDesired,
    ...(stay.telemetryIntervalMs !== undefined ? { telemetryIntervalMs: stay.telemetryIntervalMs } : {}),
    onEvent,
  };
}
