// The socket's own error behind what the SDK reports when a connection cannot be made (refused, a
// name that does not resolve, a TLS failure, a port that speaks another protocol): shared by the
// provisioning transports and the hub session, which both name the outcome by it.

/** A rhea connection as azure-iot-amqp-base keeps it (`_rheaConnection`, private in its typings). */
interface RheaConnection {
  socket?: { setNoDelay?: (noDelay: boolean) => unknown };
  prependListener?: (
    event: 'disconnected' | 'protocol_error',
    listener: (context?: { error?: unknown }) => void,
  ) => unknown;
}

/** The rhea connection of an azure-iot-amqp-base `Amqp` (set within its `connect`). */
export function rheaConnectionOf(base: unknown): RheaConnection | undefined {
  return (base as { _rheaConnection?: RheaConnection } | undefined)?._rheaConnection;
}

/**
 * Calls `onError` with the socket's error when the rhea connection `base` is opening is lost. Call
 * right after the base's `connect` (rhea opens the socket on the next tick). Prepended, so that it
 * runs before the base's own listener, which fails the connect with a bare
 * NotConnectedError('rhea: connection disconnected') and drops the error. Being a listener, it also
 * stops rhea printing `[connection-1] disconnected CloseEvent {…}` to the console when a WebSocket
 * closes after the base has stopped listening.
 */
function watchRheaConnection(base: unknown, onError: (error: Error) => void): void {
  const connection = rheaConnectionOf(base);
  connection?.prependListener?.('disconnected', (context) => {
    const error = errorOf(context?.error);
    if (error) onError(error);
  });
  // A peer that is no AMQP listener (the HTTPS or MQTT port): rhea prints its ProtocolError with
  // the bytes it read, in hex, unless someone listens; the `disconnected` above keeps the error.
  connection?.prependListener?.('protocol_error', () => {});
}

/**
 * The Error in what rhea reports a lost connection with: the socket's Error over TLS, ws's
 * ErrorEvent (its `error`) over WebSockets; a CloseEvent carries none.
 */
function errorOf(value: unknown): Error | undefined {
  if (value instanceof Error) return value;
  const inner = typeof value === 'object' && value !== null ? (value as { error?: unknown }).error : undefined;
  return inner instanceof Error ? inner : undefined;
}

/**
 * Runs `connect` (an azure-iot-amqp-base `connect`, bound to `base`) so that a connect error carries
 * the socket's error behind it (see watchRheaConnection, attachSocketError): the provisioning
 * transport's AMQP base and the hub session's both connect through here.
 */
export function connectKeepingSocketError<Config, Err, Result>(
  base: unknown,
  connect: (config: Config, done: (err: Err, result?: Result) => void) => void,
  config: Config,
  done: (err: Err, result?: Result) => void,
): void {
  let socketError: Error | undefined;
  connect(config, (err, result) => {
    if (err) attachSocketError(err, socketError);
    done(err, result);
  });
  watchRheaConnection(base, (error) => {
    socketError ??= error;
  });
}

/**
 * Gives the base's connect error the socket error behind it as `transportError` (mqtt-base's name
 * for the same), unless it already has one: `socketFailure` reads it.
 */
function attachSocketError(err: unknown, socketError: Error | undefined): void {
  if (typeof err !== 'object' || err === null) return;
  const target = err as { transportError?: unknown };
  if (socketError && target !== socketError && target.transportError === undefined) target.transportError = socketError;
}

/**
 * The outcome's name for a connection that could not be made: Node's code (`ECONNREFUSED`,
 * `ENOTFOUND`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, `ERR_TLS_CERT_ALTNAME_INVALID`, …) of the error
 * or of its `transportError` (mqtt-base wraps socket errors in NotConnectedError.transportError),
 * or rhea's ProtocolError ("Invalid protocol header for AMQP HTTP": a port of another protocol).
 * Undefined for anything else.
 */
export function socketFailure(error: unknown): { errorName: string; errorMessage: string } | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const err = error as { code?: unknown; message?: unknown; transportError?: unknown };
  const message = typeof err.message === 'string' ? err.message : '';
  if (typeof err.code === 'string' && err.code) return { errorName: err.code, errorMessage: message };
  const inner =
    typeof err.transportError === 'object' && err.transportError !== null
      ? (err.transportError as { code?: unknown; name?: unknown; message?: unknown })
      : undefined;
  const innerMessage = typeof inner?.message === 'string' ? inner.message : message;
  if (typeof inner?.code === 'string' && inner.code) return { errorName: inner.code, errorMessage: innerMessage };
  if (inner?.name === 'ProtocolError') return { errorName: 'ProtocolError', errorMessage: innerMessage };
  return undefined;
}
