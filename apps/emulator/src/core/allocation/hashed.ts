import * as crypto from 'node:crypto';
import type { LinkedHub } from '../model.js';

// crypto.hash (Node 20.12 / 21.7) hashes in one call; a Hash object per hub and registration is a
// stream object whose short life made V8 drop optimized code at every full collection (bench:server).
const oneShotHash: typeof crypto.hash | undefined = typeof crypto.hash === 'function' ? crypto.hash : undefined;

function sha256(text: string): Buffer {
  return oneShotHash
    ? oneShotHash('sha256', text, 'buffer')
    : crypto.createHash('sha256').update(text, 'utf8').digest();
}

/** A uniform number in (0, 1) from the registration id and hub name. */
function unitHash(registrationId: string, hostName: string): number {
  const digest = sha256(`${registrationId.toLowerCase()}\n${hostName.toLowerCase()}`);
  const high = digest.readUInt32BE(0) >>> 11; // 21 bits
  const low = digest.readUInt32BE(4); // 32 bits
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
