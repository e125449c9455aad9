import functions from '@azure/functions';
import { allocateHandler } from '../handler/allocate.js';
import { httpFunction } from '../registration/http-function.js';

export { allocateHandler, createAllocateHandler } from '../handler/allocate.js';

/**
 * The custom allocation webhook: `POST /api/allocate?code=<function key>`. DPS only ever POSTs,
 * and the function key in the URL is the only authentication DPS supports.
 */
export const allocate = httpFunction('allocate', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'allocate',
  handler: allocateHandler,
});

functions.app.http(allocate.name, allocate.options);
