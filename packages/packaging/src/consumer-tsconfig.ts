import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes `dir/tsconfig.json` for the consumer's files as a Node project has it: strict, NodeNext,
 * lib ES2023 (no DOM), Node's types. `skipLibCheck: false` checks every declaration the packages
 * ship and pull in (the emulator's entry once pulled in @peculiar/x509's, which need the DOM's
 * WebCrypto types: 122 errors for such a consumer). Without `outDir`, nothing is emitted.
 */
export function writeConsumerTsconfig(
  dir: string,
  file: string | readonly string[],
  options: { skipLibCheck: boolean; outDir?: string },
): void {
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        strict: true,
        skipLibCheck: options.skipLibCheck,
        types: ['node'],
        ...(options.outDir ? { outDir: options.outDir } : { noEmit: true }),
      },
      include: typeof file === 'string' ? [file] : file,
    }),
  );
}
