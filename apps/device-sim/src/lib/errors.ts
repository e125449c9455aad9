/** A library option (or CLI flag) that cannot be used; `field` names it. Thrown before any connection. */
export class InvalidOptionError extends Error {
  override readonly name = 'InvalidOptionError';
  constructor(
    readonly field: string,
    message: string,
    /** What was probably meant, e.g. `--transport mqtt`, when a near miss is clear. */
    readonly suggestion?: string,
  ) {
    super(message);
  }
}
