#!/usr/bin/env node
// `npm run setup`: installs the workspace from the lockfile on a machine that has only Node >= 20 and npm.
//
// - pnpm is fetched by `npx` (no global pnpm, no corepack). After the install the root devDependency
//   `pnpm` sits in node_modules/.bin, which `npm run` puts on the PATH, so turbo finds a pnpm binary.
// - better-sqlite3 is compiled by node-gyp where no prebuilt binary can be downloaded. node-gyp would
//   then download Node's headers, which fails without internet access to nodejs.org. Node's installers
//   (the official tarballs, Debian/Ubuntu, Homebrew, nvm) put the headers beside the binary, in
//   <prefix>/include/node, so when they are there and match the running Node we point node-gyp at them.
//   An explicit npm_config_nodedir (environment or npm config) wins.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const PNPM = 'pnpm@12.4.2';

/** The Node install prefix whose include/node headers match the running Node, or undefined. */
function localNodeHeadersPrefix() {
  const prefix = dirname(dirname(process.execPath));
  const versionHeader = join(prefix, 'include', 'node', 'node_version.h');
  if (!existsSync(versionHeader)) return undefined;
  const text = readFileSync(versionHeader, 'utf8');
  const part = (name) => text.match(new RegExp(`#define NODE_${name}_VERSION (\\d+)`))?.[1];
  const headersVersion = `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  return headersVersion === process.versions.node ? prefix : undefined;
}

const env = { ...process.env };
if (!env.npm_config_nodedir) {
  const prefix = localNodeHeadersPrefix();
  if (prefix) env.npm_config_nodedir = prefix;
}

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const args = ['--yes', PNPM, 'install', '--frozen-lockfile', ...process.argv.slice(2)];
console.log(`> npx ${args.join(' ')}${env.npm_config_nodedir ? ` (node-gyp headers: ${env.npm_config_nodedir})` : ''}`);
const result = spawnSync(npx, args, { stdio: 'inherit', env, shell: process.platform === 'win32' });
if (result.error) {
  console.error(`setup: could not run npx: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
