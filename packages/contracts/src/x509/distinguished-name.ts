/**
 * Reads a distinguished name as DPS prints it (`CN=device-1, OU=toasters, O=Contoso, C=US`, .NET's
 * format; values holding `,` `+` `=` or `"` are double-quoted, `""` inside quotes is one quote) into
 * its attributes in order. Multi-valued RDNs (`+`) become separate attributes. This parses the
 * printed text only, never ASN.1: certificates themselves are read with node:crypto.
 */
export function parseDistinguishedName(name: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  let i = 0;
  const skipSpaces = () => {
    while (name[i] === ' ') i++;
  };
  while (i < name.length) {
    skipSpaces();
    const eq = name.indexOf('=', i);
    if (eq === -1) break;
    const type = name.slice(i, eq).trim();
    i = eq + 1;
    skipSpaces();
    let value = '';
    if (name[i] === '"') {
      i++;
      while (i < name.length) {
        if (name[i] === '"' && name[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (name[i] === '"') {
          i++;
          break;
        } else {
          value += name[i++];
        }
      }
      while (i < name.length && name[i] !== ',' && name[i] !== '+') i++;
    } else {
      const start = i;
      while (i < name.length && name[i] !== ',' && name[i] !== '+') i++;
      value = name.slice(start, i).trim();
    }
    if (type) out.push({ type, value });
    i++; // the separator
  }
  return out;
}

/** The first value of an attribute (`CN`, `OU`, `O`, …; case-insensitive), or undefined. */
export function distinguishedNameAttribute(name: string, type: string): string | undefined {
  const wanted = type.toLowerCase();
  return parseDistinguishedName(name).find((attribute) => attribute.type.toLowerCase() === wanted)?.value;
}
