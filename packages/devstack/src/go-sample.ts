import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';

/** The Go sample: one package, standard library only (examples/go-sample). */
export const GO_SAMPLE_REPO = resolve('examples/go-sample');
/** Its scripted agent: adds `Multiply` and its test, byte for byte the same every time. */
export const SCRIPTED_GO_AGENT = resolve('examples/agents/scripted-go-agent.mjs');

/**
 * The Go toolchain on `path` (`go env GOROOT` and `go version`), or undefined when there is no `go`
 * there: what needs it (the Go sample's tests and bench) skips then.
 */
export function goToolchain(path: string): { goroot: string; version: string } | undefined {
  const env = { PATH: path };
  const run = (...args: string[]) => spawnSync('go', args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const root = run('env', 'GOROOT');
  if (root.error || root.status !== 0 || !root.stdout.trim()) return undefined;
  return { goroot: root.stdout.trim(), version: run('version').stdout.trim() };
}

/**
 * The definition of the Go sample, with absolute paths for this checkout. The sandbox mounts the
 * toolchain (`goroot`, whose bin/ joins PATH) and the scripted agent's folder read-only; the operator's
 * policy must allow both (AMEIDE_SANDBOX_READ_ONLY_PATHS). `GOTOOLCHAIN=local`: never fetch another
 * toolchain. The tenant's GOCACHE and GOMODCACHE come from the worker (guardrails.packageCaches).
 */
export function goSampleDefinition(originDir: string, goroot: string, name = 'go-calculator') {
  return {
    name,
    annotations: { team: 'demo' },
    spec: {
      repoUrl: originDir,
      defaultBranch: 'main',
      installCommand: 'go build ./...',
      agentCommand: 'node "$AGENT_SCRIPT"',
      testCommand: 'go test ./...',
      branchPrefix: 'ameide/',
      phaseTimeoutSeconds: 300,
      env: { AGENT_SCRIPT: SCRIPTED_GO_AGENT, GOTOOLCHAIN: 'local' },
      guardrails: { readOnlyPaths: [dirname(SCRIPTED_GO_AGENT), goroot] },
    },
  };
}
