import { type ReadTextFile, readNamedFile, readUtf8 } from './text-file.js';

/** The placeholder of `fleet --cert/--key` templates: the device's registration id. */
export const ID_PLACEHOLDER = '{id}';

/**
 * Reads a device's certificate (PEM, its own certificate first, then the intermediates it presents)
 * and private key (PEM) from files; a missing or unreadable file is refused, naming the flag.
 */
export function readCertificateFiles(
  certPath: string,
  keyPath: string,
  readFile: ReadTextFile = readUtf8,
): { cert: string; key: string } {
  return {
    cert: readNamed(certPath, '--cert', 'certificate', readFile),
    key: readNamed(keyPath, '--key', 'key', readFile),
  };
}

/** `--cert certs/{id}.pem` → the path for one registration id. */
export function expandIdTemplate(template: string, registrationId: string): string {
  return template.replaceAll(ID_PLACEHOLDER, registrationId);
}

function readNamed(path: string, flag: string, what: string, readFile: ReadTextFile): string {
  return readNamedFile(path, readFile, 'certificate', (why) => `${flag}: the ${what} file "${path}" ${why}`);
}
