import { createRequire } from 'node:module';

/**
 * `@azure/functions` (classes and `app`), loaded with `require`. The package is one large CommonJS
 * bundle; an ESM `import` of it first runs Node's CommonJS export scan over the whole source, which
 * made loading it two to three times slower: tens of milliseconds of the local host's cold start
 * (issue #13). Same module instance either way. Types still come from `import type`.
 */
export const functionsLibrary = createRequire(import.meta.url)('@azure/functions') as typeof import('@azure/functions');
