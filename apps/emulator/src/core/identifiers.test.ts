import { describe, expect, it } from 'vitest';
import {
  createEnrollmentEtag,
  createOperationId,
  createRegistrationEtag,
  dpsTimestamp,
  isOperationId,
} from './identifiers.js';

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

  it('formats timestamps with seven fractional digits and etags as the service does', () => {
    expect(dpsTimestamp(new Date('2021-06-30T06:52:07.728Z'))).toBe('2021-06-30T06:52:07.7280000Z');
    expect(Buffer.from(createRegistrationEtag(), 'base64').toString()).toMatch(/^"[0-9a-f-]{36}"$/);
    expect(createEnrollmentEtag('13003fea00000300000062d1d5e50000ffff')).toBe('"13003fea-0000-0300-0000-62d1d5e50000"');
  });
});
