/**
 * A run's provenance: which worker ran it (its Temporal identity and version), which workflow run,
 * and with which tools. Tool versions are asked once per worker process.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { toolEnv } from '@ameide/config';
import type { RunProvenanceResult } from '@ameide/temporal';

const execFileAsync = promisify(execFile);

/** The most characters of the agent command the provenance carries; a longer one is cut and its digest added. */
export const MAX_AGENT_COMMAND_CHARS = 1000;

const cache = new Map<string, Promise<string | undefined>>();

/** Asks a tool once per process; a failure is not remembered (the next run asks again). */
function once(key: string, ask: () => Promise<string | undefined>): Promise<string | undefined> {
  let p = cache.get(key);
  if (!p) {
    p = ask().catch(() => {
      cache.delete(key);
      return undefined;
    });
    cache.set(key, p);
  }
  return p;
}

/** The first line a `--version` prints, without the tool's name (`git version 2.43.0` → `2.43.0`). */
export function versionLine(output: string, prefix: RegExp): string | undefined {
  const line = output.trim().split('\n')[0]?.trim() ?? '';
  return line.replace(prefix, '').trim() || undefined;
}

async function askVersion(file: string, prefix: RegExp): Promise<string | undefined> {
  const { stdout } = await execFileAsync(file, ['--version'], { env: toolEnv(), timeout: 10_000 });
  return versionLine(stdout, prefix);
}

/** The git the worker runs (`workerGit`: `git` on the worker's PATH). */
export const gitVersion = () => once('git', () => askVersion('git', /^git version\s*/));

/** The bubblewrap the sandbox runs, at `path`. */
export const bubblewrapVersion = (path: string) => once(`bwrap:${path}`, () => askVersion(path, /^bubblewrap\s*/));

/** This worker's version: the `version` of its package.json. */
export const workerVersion = () =>
  once('worker', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version;
  });

/**
 * The agent command as provenance carries it: already redacted by the caller, cut to
 * MAX_AGENT_COMMAND_CHARS characters with its length and digest appended when longer (the service
 * takes strings of a few KiB).
 */
export function boundedCommand(command: string): string {
  const chars = [...command];
  if (chars.length <= MAX_AGENT_COMMAND_CHARS) return command;
  const sha256 = createHash('sha256').update(command).digest('hex');
  return `${chars.slice(0, MAX_AGENT_COMMAND_CHARS).join('')}… (${Buffer.byteLength(command)} bytes, sha256 ${sha256})`;
}

export interface ProvenanceInput {
  workerIdentity: string;
  temporalRunId: string;
  /** The definition's agent command, redacted. */
  agentCommand: string;
  /** The bubblewrap binary, when the run's commands ran in bubblewrap. */
  bubblewrap?: string;
  /** The coding agent of the agent phase: what ran and the model it talked to. */
  agent?: { kind: string; version: string; model: string; endpoint: string };
}

/** Who ran the run and with which tools. A tool whose version cannot be asked is left out. */
export async function runProvenance(input: ProvenanceInput): Promise<RunProvenanceResult> {
  const [git, bwrap, version] = await Promise.all([gitVersion(), input.bubblewrap ? bubblewrapVersion(input.bubblewrap) : undefined, workerVersion()]);
  const toolVersions: Record<string, string> = { node: process.version };
  if (git) toolVersions.git = git;
  if (bwrap) toolVersions.bubblewrap = bwrap;
  if (input.agent) {
    toolVersions.agent = `${input.agent.kind}: ${input.agent.version}`;
    toolVersions.agent_model = `${input.agent.model} at ${input.agent.endpoint}`;
  } else toolVersions.agent_command = boundedCommand(input.agentCommand);
  return { workerIdentity: input.workerIdentity, workerVersion: version ?? '', temporalRunId: input.temporalRunId, toolVersions };
}
