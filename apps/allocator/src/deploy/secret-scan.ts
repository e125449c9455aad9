import { open } from 'node:fs/promises';

/**
 * What a file in a deployment package must not hold, by shape: the keys and tokens a dpskit user
 * has lying in the app folder (the emulator's banner or config, a copied `az … --show-keys` output,
 * a device's key file). Shapes need a real value (16+ base64 characters), so code that builds a
 * connection string (`SharedAccessKey=${key}`) is not one.
 */
const SECRET_SHAPES: ReadonlyArray<{ what: string; pattern: RegExp }> = [
  { what: 'a shared access key (SharedAccessKey=…)', pattern: /SharedAccessKey=[A-Za-z0-9+/]{16,}/ },
  { what: 'a SAS token signature (sig=…)', pattern: /[?&\s]sig=[A-Za-z0-9%+/]{16,}/ },
  {
    what: 'an enrollment or device key (primaryKey/secondaryKey)',
    pattern: /\b(?:primaryKey|secondaryKey)["']?\s*[:=]\s*["']?[A-Za-z0-9+/]{22,}/,
  },
  // With its body: code or docs naming the header (msal-node's typings do) are not a key.
  { what: 'a private key (PEM)', pattern: /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40,}/ },
];

/** Bytes of a file read for the scan: a key is in a banner, a config or a line of a log, not 16 MiB in. */
export const SECRET_SCAN_BYTES = 16 * 1024 * 1024;

export interface SecretFound {
  /** What it looks like (never the value). */
  what: string;
  line: number;
}

/** The first secret-shaped text in `text`, with its 1-based line; undefined when there is none. */
export function secretIn(text: string): SecretFound | undefined {
  let first: { what: string; index: number } | undefined;
  for (const { what, pattern } of SECRET_SHAPES) {
    const match = pattern.exec(text);
    if (match && (first === undefined || match.index < first.index)) first = { what, index: match.index };
  }
  if (!first) return undefined;
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < first.index; i = text.indexOf('\n', i + 1)) line += 1;
  return { what: first.what, line };
}

/** `secretIn` over the first SECRET_SCAN_BYTES of a file (latin1: any bytes, the shapes are ASCII). */
export async function secretInFile(file: string): Promise<SecretFound | undefined> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(Math.min((await handle.stat()).size, SECRET_SCAN_BYTES));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return secretIn(buffer.toString('latin1', 0, bytesRead));
  } finally {
    await handle.close();
  }
}
