import { registerAllocationFunction } from '@dpskit/allocator';
import { firmwarePolicy } from '../firmware-policy.js';

// POST /api/allocate?code=<function key>: the webhook URL of the enrollment group.
registerAllocationFunction('allocate', { policy: firmwarePolicy });
