import { describe, expect, it } from 'vitest';
import { distinguishedNameAttribute, parseDistinguishedName } from './distinguished-name.js';

describe('parseDistinguishedName', () => {
  it('reads the .NET form, most specific first', () => {
    expect(parseDistinguishedName('CN=toaster-007, OU=toasters, O=Contoso, C=US')).toEqual([
      { type: 'CN', value: 'toaster-007' },
      { type: 'OU', value: 'toasters' },
      { type: 'O', value: 'Contoso' },
      { type: 'C', value: 'US' },
    ]);
  });

  it('reads quoted values with separators and doubled quotes', () => {
    expect(parseDistinguishedName('CN="a, b", O="say ""hi""" + OU=x')).toEqual([
      { type: 'CN', value: 'a, b' },
      { type: 'O', value: 'say "hi"' },
      { type: 'OU', value: 'x' },
    ]);
  });

  it('finds an attribute case-insensitively and says when it is absent', () => {
    expect(distinguishedNameAttribute('CN=x, ou=heatpumps', 'OU')).toBe('heatpumps');
    expect(distinguishedNameAttribute('CN=x', 'OU')).toBeUndefined();
    expect(parseDistinguishedName('')).toEqual([]);
  });
});
