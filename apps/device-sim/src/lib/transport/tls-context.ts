import { createSecureContext, type SecureContext } from 'node:tls';

/**
 * One TLS client context for many devices that trust the same CA and present no certificate of
 * their own (symmetric keys): `ca` (PEM) or, without it, Node's bundled roots, as each connection
 * would otherwise build for itself. Undefined when the CA cannot be loaded: the devices then build
 * their own and report that failure one by one, as before.
 */
export function createSharedTlsContext(ca: string | undefined): SecureContext | undefined {
  try {
    return createSecureContext(ca === undefined ? {} : { ca });
  } catch {
    return undefined;
  }
}
