import { simpleGit, type SimpleGit } from 'simple-git';

/** Identity of commits the worker makes. */
export const AGENT_IDENTITY = { name: 'Ameide Agent', email: 'agent@ameide.dev' };

/**
 * A simple-git instance for `dir` with the worker's identity; never inherits GIT_* variables.
 * simple-git waits an extra 50 ms after any git command that printed nothing, so commands on a run's
 * path are called in forms that always print something (no --quiet; --verbose where it helps).
 */
export function gitAt(dir: string): SimpleGit {
  return simpleGit({
    baseDir: dir,
    config: [`user.name=${AGENT_IDENTITY.name}`, `user.email=${AGENT_IDENTITY.email}`, 'safe.directory=*', 'advice.detachedHead=false'],
  });
}
