// `@dpskit/contracts/keys`: device key derivation and the registration id rules, and nothing else.
// The main entry loads zod and builds every wire schema (about 60 ms of CPU at start-up, measured
// importing dist/index.js against dist/keys.js's 5 ms); a program that only derives keys or checks
// ids, such as `device-sim keys derive`, needs none of it. These are the main entry's own functions
// and classes (the same objects), so `instanceof KeyError` holds across the two entries.
export * from './keys.js';
export * from './registration/registration-id.js';
