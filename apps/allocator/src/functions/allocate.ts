import { tutorialPolicy } from '../policy/tutorial.js';
import { registerAllocationFunction } from '../registration/allocation-function.js';

export { allocateHandler, createAllocateHandler } from '../handler/allocate.js';

/**
 * The custom allocation webhook: `POST /api/allocate?code=<function key>`. DPS only ever POSTs,
 * and the function key in the URL is the only authentication DPS supports.
 */
export const allocate = registerAllocationFunction('allocate', { policy: tutorialPolicy });
