import { InvalidServiceResponseError } from '../sdk/invalid-response.js';
import type { Mqtt } from '../sdk/mqtt.js';
import type { RegistrationPhase, StatusUpdate } from '../types.js';

const SDK_STATUS: Record<RegistrationPhase, string> = {
  connected: 'PROV_DEVICE_REG_STATUS_CONNECTED',
  registering: 'PROV_DEVICE_REG_STATUS_REGISTERING',
  assigning: 'PROV_DEVICE_REG_STATUS_ASSIGNING',
  assigned: 'PROV_DEVICE_REG_STATUS_ASSIGNED',
  failed: 'PROV_DEVICE_REG_STATUS_ERROR',
  disabled: 'PROV_DEVICE_REG_STATUS_ERROR',
};

export function sdkStatusName(phase: RegistrationPhase): string {
  return SDK_STATUS[phase];
}

/** The callback the SDK's polling state machine gives every transport request. */
export type TransportCallback = Parameters<InstanceType<typeof Mqtt>['registrationRequest']>[1];

/**
 * Watches one registration through its transport: turns connections and service responses into
 * `StatusUpdate`s, and catches responses that would crash the SDK (`fatal`).
 */
export class RegistrationObserver {
  private connectedReported = false;
  private fatalHandler: ((err: Error) => void) | undefined;

  constructor(
    private readonly registrationId: string,
    private readonly startedAt: number,
    private readonly onStatus: ((s: StatusUpdate) => void) | undefined,
  ) {}

  connected(): void {
    if (this.connectedReported) return;
    this.connectedReported = true;
    this.emit({ phase: 'connected' });
  }

  /** Registers who to tell when the service sent something the SDK cannot survive. */
  onFatal(handler: (err: Error) => void): void {
    this.fatalHandler = handler;
  }

  fatal(err: Error): void {
    this.fatalHandler?.(err);
  }

  /**
   * Wraps a transport callback: reports the response, and turns a 2xx body without a string `status`
   * (which makes the SDK throw `result.status.toLowerCase()` inside an event handler) into an error.
   */
  wrap(callback: TransportCallback): TransportCallback {
    return (err, result, response, pollingInterval) => {
      if (err) {
        callback(err, result, response, pollingInterval);
        return;
      }
      const body: Record<string, unknown> | undefined =
        typeof result === 'object' && result !== null ? (result as unknown as Record<string, unknown>) : undefined;
      const status = body?.status;
      if (typeof status !== 'string') {
        const raw: unknown = result;
        const shown = typeof raw === 'string' ? JSON.stringify(raw.slice(0, 200)) : JSON.stringify(raw);
        callback(
          new InvalidServiceResponseError(
            `the service answered a success status with a body that has no "status" field (${shown}); the SDK would crash on it`,
          ),
        );
        return;
      }
      this.connected();
      const phase = status.toLowerCase();
      const update: Omit<StatusUpdate, 'registrationId' | 'sdkStatus' | 'elapsedMs'> = {
        phase: 'assigning',
      };
      if (typeof body?.operationId === 'string') update.operationId = body.operationId;
      if (phase === 'registering') {
        update.phase = 'registering';
        update.throttled = true;
      } else if (phase === 'assigned' || phase === 'failed' || phase === 'disabled') {
        update.phase = phase;
      }
      if ((update.phase === 'assigning' || update.phase === 'registering') && pollingInterval !== undefined) {
        update.nextPollMs = pollingInterval;
      }
      if (phase === 'assigning' || update.phase !== 'assigning') this.emit(update);
      callback(undefined, result, response, pollingInterval);
    };
  }

  private emit(update: Omit<StatusUpdate, 'registrationId' | 'sdkStatus' | 'elapsedMs'>): void {
    if (!this.onStatus) return;
    this.onStatus({
      registrationId: this.registrationId,
      sdkStatus: SDK_STATUS[update.phase],
      elapsedMs: Math.round(performance.now() - this.startedAt),
      ...update,
    });
  }
}
