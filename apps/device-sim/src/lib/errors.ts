/** A library option (or CLI flag) that cannot be used; `field` names it. Thrown before any connection. */
export class InvalidOptionError extends Error {
  override readonly name = 'InvalidOptionError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}
