import { simpleGit, type SimpleGit } from 'simple-git';

/** Identity of commits the worker makes. */
export const AGENT_IDENTITY = { name: 'Ameide Agent', email: 'agent@ameide.dev' };

/** A simple-git instance for `dir` with the worker's identity; never inherits GIT_* variables. */
export function gitAt(dir: string): SimpleGit {
  return simpleGit({
    baseDir: dir,
    config: [`user.name=${AGENT_IDENTITY.name}`, `user.email=${AGENT_IDENTITY.email}`, 'safe.directory=*', 'advice.detachedHead=false'],
  });
}
