import * as crypto from 'node:crypto';
import type { LinkedHub } from '../model.js';

// crypto.hash (Node 20.12 / 21.7) hashes in one call; a Hash object per hub and registration is a
// stream object whose short life made V8 drop optimized code at every full collection (bench:server).
const oneShotHash: typeof crypto.hash | undefined = typeof crypto.hash === 'function' ? crypto.hash : undefined;

/** A uniform number in (0, 1) from the registration id and hub name (exported for its test). */
export function unitHash(registrationId: string, hostName: string): number {
  const text = `${registrationId.toLowerCase()}\n${hostName.toLowerCase()}`;
  let high: number; // the digest's first 21 bits
  let low: number; // its bytes 4 to 7
  if (oneShotHash) {
    // The digest as a 'binary' (latin1) string, one char per byte: a Buffer result cost 3-5 us a hash against
    // ~1 us (a registration hashes once per candidate hub), as in contracts' hmac-sha256.ts.
    const digest = oneShotHash('sha256', text, 'binary');
    high =
      ((digest.charCodeAt(0) << 24) |
        (digest.charCodeAt(1) << 16) |
        (digest.charCodeAt(2) << 8) |
        digest.charCodeAt(3)) >>>
      11;
    low =
      digest.charCodeAt(4) * 2 ** 24 +
      ((digest.charCodeAt(5) << 16) | (digest.charCodeAt(6) << 8) | digest.charCodeAt(7));
  } else {
    const digest = crypto.createHash('sha256').update(text, 'utf8').digest();
    high = digest.readUInt32BE(0) >>> 11;
    low = digest.readUInt32BE(4);
  }
  return (high * 2 ** 32 + low + 0.5) / 2 ** 53;
}

/**
 * DPS's "evenly weighted distribution": a weighted rendezvous hash. Each hub scores
 * `-weight / ln(u)` with `u` a hash of (registration id, hub); the highest score wins. The same
 * device always lands on the same hub while the candidates do not change, each hub gets a share
 * proportional to its `allocationWeight`, and adding a hub only moves devices onto that hub.
 */
export function pickHashed(
  registrationId: string,
  hubs: readonly Pick<LinkedHub, 'hostName' | 'allocationWeight'>[],
): string | undefined {
  let best: { hostName: string; score: number } | undefined;
  for (const hub of hubs) {
    const weight = hub.allocationWeight > 0 ? hub.allocationWeight : 1;
    const score = -weight / Math.log(unitHash(registrationId, hub.hostName));
    if (!best || score > best.score || (score === best.score && hub.hostName < best.hostName)) {
      best = { hostName: hub.hostName, score };
    }
  }
  return best?.hostName;
}
