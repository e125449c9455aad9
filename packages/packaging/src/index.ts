// Helpers to test dpskit the way its users get it: packed tarballs installed with plain npm.
export {
  type InstallOptions,
  type InstallProjectOptions,
  installProject,
  installTarballs,
  nodeHeadersEnv,
  userEnv,
  workspaceNativePrebuilds,
} from './install.js';
export { extractTarball, type PackedPackage, packPackages, pnpmBinary } from './pack.js';
export { type RunOptions, type RunResult, run, runOk } from './run.js';
export {
  findWorkspaceRoot,
  listWorkspacePackages,
  type PackageManifest,
  publishablePackages,
  type WorkspacePackage,
  withWorkspaceDependencies,
} from './workspace.js';
