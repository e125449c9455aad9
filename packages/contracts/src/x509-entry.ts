// `@dpskit/contracts/x509`: reading the distinguished names DPS prints in a request's certificate info
// (`parseDistinguishedName`, `distinguishedNameAttribute`), and nothing else. The main entry loads zod
// and builds every wire schema; a policy that decides by the device certificate needs none of it
// (the allocator's `certificatePolicy`: importing `@dpskit/allocator` took ~54 ms less CPU without the
// main entry, issue #13). These are the main entry's own functions (the same objects).
export * from './x509/distinguished-name.js';
