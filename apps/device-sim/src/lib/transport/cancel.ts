import type { RegistrationObserver, TransportCallback } from './observer.js';

/** What a request of an aborted registration fails with, named like the SDK's own cancellation. */
export function cancelled(): Error {
  const err = new Error('registration cancelled');
  err.name = 'OperationCancelledError';
  return err;
}

/**
 * One request of the SDK's polling state machine (`registrationRequest` or `queryOperationStatus`),
 * for the MQTT and HTTP transports alike: refused once the registration was aborted, otherwise sent
 * with the observer watching its answer.
 */
export function sendObserved(
  aborted: boolean,
  observer: RegistrationObserver,
  callback: TransportCallback,
  send: (observed: TransportCallback) => void,
): void {
  if (aborted) {
    callback(cancelled());
    return;
  }
  send(observer.wrap(callback));
}
