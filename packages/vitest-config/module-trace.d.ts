/**
 * Runs `node --import <a module hook> ...args`: the URL of every ES module the process resolved, its
 * stdout and its exit code. `stdin` is piped in; `env` is the child's environment (default this process's).
 */
export declare function modulesResolved(
  args: string[],
  options?: { stdin?: string; env?: NodeJS.ProcessEnv },
): Promise<{ modules: string[]; stdout: string; code: number }>;
