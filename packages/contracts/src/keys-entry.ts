// `@dpskit/contracts/keys`: device credentials (key derivation, SAS tokens) and the registration id
// rules, and nothing else. The main entry loads zod and builds every wire schema (about 60 ms of CPU
// at start-up, measured importing dist/index.js against dist/keys.js's 5 ms); a program that only
// derives keys, signs tokens or checks ids, such as `device-sim keys derive` or the benches' lean
// MQTT device, needs none of it. These are the main entry's own functions and classes (the same
// objects), so `instanceof KeyError` and `instanceof SasTokenError` hold across the two entries.
export * from './keys.js';
export * from './registration/registration-id.js';
export * from './sas.js';
