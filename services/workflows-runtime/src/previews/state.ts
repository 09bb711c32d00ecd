import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { safeSegment } from '../activities/workspace.js';

/**
 * What the worker keeps on disk about a live local preview, so that a worker process that starts
 * on the same workspace finds what an earlier one left running (see stopLeftoverPreviews).
 */
export interface PreviewState {
  runId: string;
  tenantId: string;
  /** The worker process that started it; the preview dies with it. */
  workerPid: number;
  /** The preview's first process (the sandbox's launcher, leader of its process group), and its start time in /proc. */
  pid?: number;
  pidStart?: string;
  /** Fragment of the name of its cgroup (`-<runId>-preview-`), as killCommandCgroups takes it. */
  cgroup: string;
  /** Where the preview router reaches it: the worker's listener (or, without a sandbox, the server itself). */
  host: string;
  port: number;
  /** Host directory of the sandbox's inbound socket (absent without a sandbox). */
  socketDir?: string;
  /** The preview's transcript (redacted), in the run's transcripts directory. */
  transcript: string;
  /**
   * What becomes of the run's workspace when the preview stops: unset while the run is still going
   * (its report decides), `remove` or `keep` once the run ended and the preview holds it (holdForPreview).
   */
  workspace?: 'remove' | 'keep';
  expireTime: string;
  startTime: string;
}

export function previewsDir(workspaceDir: string): string {
  return join(workspaceDir, 'previews');
}

export function statePath(workspaceDir: string, tenantId: string, runId: string): string {
  return join(previewsDir(workspaceDir), `${safeSegment(tenantId)}--${safeSegment(runId)}.json`);
}

function parse(text: string): PreviewState | undefined {
  try {
    const s = JSON.parse(text) as PreviewState;
    return typeof s.runId === 'string' && typeof s.tenantId === 'string' && typeof s.cgroup === 'string' ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function readState(path: string): Promise<PreviewState | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parse(text);
}

/** Writes the state atomically (a half-written file is never read), readable by the worker only. */
export async function writeState(path: string, state: PreviewState): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const partial = `${path}.${process.pid}.tmp`;
  await writeFile(partial, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await rename(partial, path);
}

export async function removeState(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** Every state file in the workspace, with its path; unreadable ones are returned as undefined state. */
export async function listStates(workspaceDir: string): Promise<Array<{ path: string; state?: PreviewState }>> {
  const dir = previewsDir(workspaceDir);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json'));
  return Promise.all(names.map(async (n) => ({ path: join(dir, n), state: await readState(join(dir, n)) })));
}
