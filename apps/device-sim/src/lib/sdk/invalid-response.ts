/**
 * Raised by device-sim when a response would crash the SDK (see protocol notes §0.7). In a module of
 * its own, without `@dpskit/contracts`: the transports raise it on every connection, while the
 * contract's schemas that describe an error (sdk/errors.ts) are loaded only when a device fails.
 */
export class InvalidServiceResponseError extends Error {
  override readonly name = 'InvalidServiceResponseError';
}
