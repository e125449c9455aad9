import type { Mqtt } from '../sdk/mqtt.js';
import type { RegistrationObserver, TransportCallback } from './observer.js';

/** What a request of an aborted registration fails with, named like the SDK's own cancellation. */
export function cancelled(): Error {
  const err = new Error('registration cancelled');
  err.name = 'OperationCancelledError';
  return err;
}

/** The two requests of the SDK's polling state machine; the MQTT and HTTP transports declare them alike. */
type PollingRequests = Pick<InstanceType<typeof Mqtt>, 'registrationRequest' | 'queryOperationStatus'>;

/**
 * Watches and gates the requests of one SDK transport, MQTT or HTTP alike: `registrationRequest`
 * and `queryOperationStatus` are replaced on the instance (the state machine calls them through
 * it), so that each is refused once the registration was aborted and otherwise sent with the
 * observer watching its answer. One wrapper for both transports instead of a subclass of each.
 */
export class ObservedRequests {
  aborted = false;

  constructor(
    transport: PollingRequests,
    private readonly observer: RegistrationObserver,
  ) {
    const register = transport.registrationRequest.bind(transport);
    const query = transport.queryOperationStatus.bind(transport);
    transport.registrationRequest = (request, callback) =>
      this.send(callback, (observed) => register(request, observed));
    transport.queryOperationStatus = (request, operationId, callback) =>
      this.send(callback, (observed) => query(request, operationId, observed));
  }

  private send(callback: TransportCallback, send: (observed: TransportCallback) => void): void {
    if (this.aborted) {
      callback(cancelled());
      return;
    }
    send(this.observer.wrap(callback));
  }
}
