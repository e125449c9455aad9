import { describe, expect, it } from 'vitest';
import { createOperationId, isOperationId } from './identifiers.js';

describe('identifiers', () => {
  it('makes operation ids in DPS format, with nothing a topic or URL would need to escape', () => {
    const ids = new Set(Array.from({ length: 100 }, createOperationId));
    expect(ids.size).toBe(100);
    for (const id of ids) {
      expect(id).toMatch(/^4\.[0-9a-f]{16}\.[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(isOperationId(id)).toBe(true);
      expect(encodeURIComponent(id)).toBe(id);
    }
    expect(isOperationId('4.x.y')).toBe(false);
  });
});
