// What the package's entry exports about certificate issuance, in a module of its own: the issuance
// code imports @peculiar/x509, whose type declarations need the DOM library's WebCrypto types, and a
// declaration file the entry re-exports from is read by every TypeScript consumer. A Node project's
// `lib: ["ES2023"]` without `skipLibCheck` then failed with 122 errors in @peculiar/x509.

/** How long issued certificates are valid unless configured (choose-and-document: DPS's policies vary). */
export const DEFAULT_ISSUED_CERTIFICATE_DAYS = 30;

/** A configuration problem of the issuing CA, naming what is wrong (the key never appears). */
export class IssuingCaError extends Error {
  override readonly name = 'IssuingCaError';
}
