import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { RunView, type Run as WorkflowRun, type StatusUpdate } from '@ameide/contracts';
import { git } from '@ameide/devstack';
import type { WorkflowServiceClient } from '@ameide/sdk';
import { applySample, MULTIPLY, type Harness } from '../support/harness.js';

/**
 * Shared helpers of the hostile suite. Everything here looks at a run from OUTSIDE: the API, files on
 * the host, git origins, artifacts and Temporal history. Nothing reaches into the worker's internals.
 */

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** JSON of protobuf messages (bigints as strings), for searching. */
export const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x));

// ---------------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------------

/** A work item the scripted agent can do (it looks for "multiply" in the title), under another id. */
export const item = (id: string): WorkItem => ({ ...MULTIPLY, id });
export type WorkItem = typeof MULTIPLY;

/**
 * Follows a run to its end (replay, then follow) but gives up after `ms`, so a run that never ends
 * fails its test with a clear message instead of eating the whole test timeout.
 */
export async function watchWithin(client: WorkflowServiceClient, id: string, ms = 120_000): Promise<StatusUpdate[]> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), ms);
  const updates: StatusUpdate[] = [];
  try {
    for await (const res of client.watchWorkflowRun({ id, fromSequence: 0n }, { signal: ctl.signal })) updates.push(res.update!);
  } catch (err) {
    if (ctl.signal.aborted) {
      const run = (await client.getWorkflowRun({ id })).run;
      throw new Error(`run ${id} did not end within ${ms / 1000}s (status ${run?.status}, phase ${run?.phase}, ${updates.length} updates)`);
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return updates;
}

export interface Finished {
  run: WorkflowRun;
  updates: StatusUpdate[];
  /** Wall-clock from start to the end of the watch, ms. */
  elapsedMs: number;
}

/** Starts a run of `definition` for `workItem` and follows it to its end. */
export async function startAndFinish(client: WorkflowServiceClient, definition: string, workItem: WorkItem = item('CALC-1'), ms = 120_000): Promise<Finished> {
  const t0 = Date.now();
  const { run } = await client.startWorkflowRun({ definition, workItems: [workItem] });
  const updates = await watchWithin(client, run!.id, ms);
  const done = (await client.getWorkflowRun({ id: run!.id })).run!;
  return { run: done, updates, elapsedMs: Date.now() - t0 };
}

/** Applies the sample definition with overrides under `name`, then runs it to its end. */
export async function applyAndRun(
  client: WorkflowServiceClient,
  origin: string,
  name: string,
  overrides: Parameters<typeof applySample>[2],
  workItem: WorkItem = item('CALC-1'),
  ms?: number,
): Promise<Finished> {
  await applySample(client, origin, overrides, name);
  return startAndFinish(client, name, workItem, ms);
}

/** Where the artifact store keeps a run (the harness uses a file:// store under h.dir). */
export const artifactDir = (h: Harness, tenant: string, runId: string) => join(h.dir, 'artifacts', 'runs', tenant, runId);

/** A phase's transcript from the artifact store ('' when there is none). */
export function transcript(h: Harness, tenant: string, runId: string, phase: 'install' | 'agent' | 'test'): string {
  const p = join(artifactDir(h, tenant, runId), 'transcripts', `${phase}.log`);
  return existsSync(p) ? readFileSync(p, 'latin1') : '';
}

/** The transcript without its first line (`$ <command>`: the command itself names what it looks for). */
export const output = (t: string) => t.slice(t.indexOf('\n') + 1);

/**
 * Waits until the worker is done with a finished run's workspace (it removes it off the critical path),
 * so that whatever the worker does after the run's last update has happened before we look.
 */
export async function settle(h: Harness, tenant: string, runId: string, ms = 3000): Promise<void> {
  const dir = join(h.dir, 'workspaces', 'runs', tenant, runId);
  for (const end = Date.now() + ms; Date.now() < end && existsSync(dir);) await sleep(100);
  await sleep(300);
}

/** Turns a multi-line shell script into one command line (so quoting never gets in the way). */
export function shellScript(script: string, name = 'attack'): string {
  const b64 = Buffer.from(script).toString('base64');
  return `printf %s ${b64} | base64 -d > "$TMPDIR/.${name}.sh" && sh "$TMPDIR/.${name}.sh"`;
}

// ---------------------------------------------------------------------------------------------------
// Marker directories: only code running OUTSIDE the sandbox can create files in them
// ---------------------------------------------------------------------------------------------------

/** A world-writable host directory outside everything the sandbox mounts. */
export function markerDir(): string {
  const m = mkdtempSync(join(tmpdir(), 'ameide-hostile-marker-'));
  chmodSync(m, 0o777);
  return m;
}

export const markers = (m: string) => readdirSync(m).sort();

export function clearMarkers(m: string): void {
  for (const f of readdirSync(m)) rmSync(join(m, f), { recursive: true, force: true });
}

/**
 * Host files under `dir` (not following symlinks, at most 1 MB each) whose content mentions `needle`,
 * except under the `exclude` directories. Used to find attack payloads that outlived their run.
 */
export function filesMentioning(dir: string, needle: string, exclude: string[] = []): string[] {
  const out: string[] = [];
  const visit = (d: string) => {
    if (exclude.some((x) => d === x || d.startsWith(x + '/'))) return;
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.isFile()) {
        try {
          if (statSync(p).size <= 1 << 20 && readFileSync(p, 'latin1').includes(needle)) out.push(p);
        } catch {
          /* gone */
        }
      }
    }
  };
  if (existsSync(dir)) visit(dir);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Git origins
// ---------------------------------------------------------------------------------------------------

/** `refname sha` of every ref of a repository, one per line. */
export const refsOf = (repo: string) => git(repo, 'for-each-ref', '--format=%(refname) %(objectname)');

/** Commits `files` on top of `branch` of a bare repository (through a throwaway clone). */
export function commitFiles(bare: string, branch: string, files: Record<string, string>, message: string): string {
  const work = mkdtempSync(join(tmpdir(), 'ameide-hostile-clone-'));
  try {
    git(work, 'clone', '--quiet', '--branch', branch, bare, '.');
    for (const [p, content] of Object.entries(files)) {
      mkdirSync(dirname(join(work, p)), { recursive: true });
      writeFileSync(join(work, p), content);
    }
    git(work, 'add', '-A');
    git(work, 'commit', '--quiet', '-m', message);
    git(work, 'push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`);
    return git(work, 'rev-parse', 'HEAD');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** What actually landed in the origin for a run: the files, insertions and deletions of base..head. */
export function pushedDiff(origin: string, base: string, head: string) {
  const lines = git(origin, 'diff', '--numstat', '--no-renames', base, head).split('\n').filter(Boolean);
  const rows = lines.map((l) => l.split('\t'));
  return {
    files: rows.map((r) => r[2]!).sort(),
    insertions: rows.reduce((n, r) => n + (Number(r[0]) || 0), 0),
    deletions: rows.reduce((n, r) => n + (Number(r[1]) || 0), 0),
  };
}

// ---------------------------------------------------------------------------------------------------
// Leak search
// ---------------------------------------------------------------------------------------------------

/** The base64 characters that depend only on the secret when it sits at byte offset 0, 1 or 2 of a stream. */
function base64Inner(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let o = 0; o < 3; o++) {
    const enc = Buffer.concat([Buffer.alloc(o), bytes, Buffer.alloc(2)]).toString('base64');
    out.push(enc.slice(Math.ceil((8 * o) / 6), Math.floor((8 * (o + bytes.length)) / 6)));
  }
  return out;
}

/** The forms in which a secret is recognisable in stored text: itself, base64/base64url (any alignment), hex. */
export function secretForms(secret: string): string[] {
  const b = Buffer.from(secret);
  const inner = base64Inner(b);
  return [...new Set([secret, ...inner, ...inner.map((s) => s.replace(/\+/g, '-').replace(/\//g, '_')), b.toString('hex'), b.toString('hex').toUpperCase()])];
}

/** `where: form` for every form of the secret found in `text`. */
export function leaksIn(where: string, text: string | Buffer, secret: string): string[] {
  const s = typeof text === 'string' ? text : text.toString('latin1');
  return secretForms(secret)
    .filter((f) => s.includes(f))
    .map((f) => `${where}: ${f === secret ? 'the secret' : `encoded form ${f}`}`);
}

/** The Temporal history of a workflow as JSON, plus every payload decoded. */
export function temporalHistory(workflowId: string): { raw: string; payloads: string[] } {
  const raw = execFileSync(
    inject('temporalCli'),
    ['workflow', 'show', '--address', inject('temporalAddress'), '--namespace', 'default', '-w', workflowId, '-o', 'json'],
    { encoding: 'utf8', maxBuffer: 1 << 27 },
  );
  const payloads = [...raw.matchAll(/"data":\s*"([A-Za-z0-9+/=_-]+)"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('latin1'));
  return { raw, payloads };
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * Everything a handoff bundle holds, as searchable text: every file of the archive (and its name), and
 * when it has a `branch.bundle`, the full history it carries (`git log -p`) unpacked on top of `origin`.
 */
export function handoffTexts(handoffUri: string, origin: string): Array<{ where: string; text: string }> {
  const archive = fileURLToPath(handoffUri);
  const dir = mkdtempSync(join(tmpdir(), 'ameide-hostile-handoff-'));
  try {
    execFileSync('tar', ['-xzf', archive, '-C', dir]);
    const out: Array<{ where: string; text: string }> = [];
    for (const f of walk(dir)) {
      const rel = relative(dir, f);
      out.push({ where: `handoff ${rel} (name)`, text: rel });
      out.push({ where: `handoff ${rel}`, text: readFileSync(f, 'latin1') });
      if (f.endsWith('.bundle')) {
        // The bundle's packfile is compressed: unpack it into a repository that has its prerequisites.
        const repo = join(dir, '..', `${dir.split('/').pop()}-repo`);
        try {
          git(dir, 'init', '--quiet', '--bare', repo);
          git(repo, 'fetch', '--quiet', origin, '+refs/heads/*:refs/origin/*');
          git(repo, 'fetch', '--quiet', f, '+refs/*:refs/bundle/*');
          const log = execFileSync('git', ['-c', 'core.quotePath=false', 'log', '-p', '--binary', '--format=fuller', '--all'], {
            cwd: repo,
            encoding: 'latin1',
            maxBuffer: 1 << 27,
          });
          out.push({ where: `handoff ${rel} (git log -p)`, text: log });
          out.push({ where: `handoff ${rel} (refs)`, text: git(repo, 'for-each-ref') });
        } finally {
          rmSync(repo, { recursive: true, force: true });
        }
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Every place a finished run can leave text: the run and its status updates (API), every file of its
 * artifacts (transcripts, report.json, …), the handoff bundle unpacked, the Temporal history and its
 * decoded payloads. Returns the leaks of `secret` found.
 */
export async function secretLeaks(h: Harness, tenant: string, client: WorkflowServiceClient, f: Finished, secret: string, origin: string): Promise<string[]> {
  const found: string[] = [];
  found.push(...leaksIn('run (API)', json(f.run), secret));
  found.push(...leaksIn('status updates (watch)', json(f.updates), secret));
  // The full view: the basic one (the default) is a part of it.
  const listed = (await client.listWorkflowRuns({ view: RunView.FULL })).runs.filter((r) => r.id === f.run.id);
  found.push(...leaksIn('run (list)', json(listed), secret));
  const art = artifactDir(h, tenant, f.run.id);
  if (existsSync(art)) for (const p of walk(art)) if (!p.endsWith('.tar.gz')) found.push(...leaksIn(`artifact ${relative(art, p)}`, readFileSync(p), secret));
  if (f.run.summary?.handoffUri) for (const t of handoffTexts(f.run.summary.handoffUri, origin)) found.push(...leaksIn(t.where, t.text, secret));
  // What the worker sent of the commands' output while they ran (RecordRunOutput), as the service keeps it.
  const output: string[] = [];
  for await (const res of client.streamRunOutput({ runId: f.run.id })) output.push(res.data);
  found.push(...leaksIn('run output (StreamRunOutput)', output.join(''), secret));
  output.forEach((data, i) => found.push(...leaksIn(`run output chunk #${i}`, data, secret)));
  const history = temporalHistory(f.run.workflowId);
  found.push(...leaksIn('temporal history', history.raw, secret));
  history.payloads.forEach((p, i) => found.push(...leaksIn(`temporal payload #${i}`, p, secret)));
  return [...new Set(found)];
}

export { decodedViews, sections } from './decode.js';

// ---------------------------------------------------------------------------------------------------
// Host file modes
// ---------------------------------------------------------------------------------------------------

/** `path` and every directory above it. */
export function ancestors(path: string): string[] {
  const out = [path];
  for (let d = dirname(path); d !== out.at(-1); d = dirname(d)) out.push(d);
  return out;
}

/** Permission bits (incl. setuid/setgid/sticky) of each path, as octal strings. */
export function modes(paths: string[]): Record<string, string> {
  return Object.fromEntries(paths.map((p) => [p, (statSync(p).mode & 0o7777).toString(8).padStart(4, '0')]));
}
