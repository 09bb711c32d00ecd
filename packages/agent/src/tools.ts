/**
 * The agent's tools, confined to the worktree: read_file, list_files, search, edit_file, write_file
 * and run_command. Every path goes through {@link Workspace.resolve}; a refusal or a failure is a
 * {@link ToolError}, which the model sees as the tool's error and can correct.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, type Dirent } from 'node:fs';
import { dirname, join } from 'node:path';
import { tool } from 'langchain';
import { z } from 'zod';
import { ToolError, type Workspace } from './workspace.js';

/** The most a tool's answer may carry back to the model. */
export const MAX_TOOL_OUTPUT = 64 * 1024;
/** The largest file read_file reads (a line range of a larger file is refused too: search it instead). */
export const MAX_READ_BYTES = 1024 * 1024;
const MAX_SEARCH_FILE_BYTES = 1024 * 1024;
const MAX_MATCHES = 200;
const MAX_LISTED = 1000;
const MAX_WALKED = 50_000;
const DEFAULT_TIMEOUT_S = 120;
const MAX_TIMEOUT_S = 600;
/** Directories that list_files and search do not enter. */
const SKIPPED_DIRS = new Set(['.git', 'node_modules']);

export interface ToolOptions {
  /** The environment of run_command (the runtime's, without the API key). */
  commandEnv: Record<string, string>;
}

/** Cuts `text` to {@link MAX_TOOL_OUTPUT} characters, saying so. */
export function capOutput(text: string, max = MAX_TOOL_OUTPUT): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}\n[... ${text.length - max} more characters cut]`;
}

function readText(ws: Workspace, abs: string, path: string): string {
  let st;
  try {
    st = statSync(abs);
  } catch {
    throw new ToolError(`${path} does not exist`);
  }
  if (st.isDirectory()) throw new ToolError(`${path} is a directory: use list_files`);
  if (!st.isFile()) throw new ToolError(`${path} is not a regular file`);
  if (st.size > MAX_READ_BYTES) throw new ToolError(`${path} is ${st.size} bytes, more than ${MAX_READ_BYTES}: use search to find the lines you need`);
  const buf = readFileSync(abs);
  if (buf.includes(0)) throw new ToolError(`${ws.display(abs)} is a binary file`);
  return buf.toString('utf8');
}

/** A glob (`*`, `**`, `?`, `{a,b}`) as a regular expression over slash-separated relative paths. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      const end = glob.indexOf('}', i);
      if (end < 0) re += '\\{';
      else {
        re += `(?:${glob
          .slice(i + 1, end)
          .split(',')
          .map((alt) => globToRegExp(alt).source.slice(1, -1))
          .join('|')})`;
        i = end;
      }
    } else re += c.replace(/[.+^$()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Files under `dir` (relative paths), without entering .git, node_modules or symlinked directories. */
function* walk(ws: Workspace, dir: string): Generator<{ abs: string; rel: string; dirent: Dirent }> {
  const stack = [dir];
  let seen = 0;
  while (stack.length) {
    const current = stack.pop()!;
    let entries: Dirent[];
    try {
      entries = readdirSync(current, { withFileTypes: true });
    } catch {
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dirs: string[] = [];
    for (const e of entries) {
      if (++seen > MAX_WALKED) return;
      const abs = join(current, e.name);
      if (e.isDirectory()) {
        if (!SKIPPED_DIRS.has(e.name)) dirs.push(abs);
        continue;
      }
      yield { abs, rel: ws.display(abs), dirent: e };
    }
    stack.push(...dirs.reverse());
  }
}

function matcher(glob: string | undefined): (rel: string) => boolean {
  if (!glob) return () => true;
  const re = globToRegExp(glob);
  // A pattern without a slash matches a file's name wherever it is (as `*.ts` does in most tools).
  return glob.includes('/') ? (rel) => re.test(rel) : (rel) => re.test(rel.slice(rel.lastIndexOf('/') + 1));
}

export function createTools(ws: Workspace, options: ToolOptions) {
  const readFile = tool(
    ({ path, startLine, endLine }) => {
      const abs = ws.resolve(path);
      const text = readText(ws, abs, path);
      if (startLine === undefined && endLine === undefined) return capOutput(text);
      const lines = text.split('\n');
      const from = Math.max(1, startLine ?? 1);
      const to = Math.min(lines.length, endLine ?? lines.length);
      if (from > lines.length) throw new ToolError(`${path} has ${lines.length} lines`);
      return capOutput(lines.slice(from - 1, to).join('\n'));
    },
    {
      name: 'read_file',
      description: 'Reads a text file of the worktree. Optionally only lines startLine..endLine (1-based, inclusive).',
      schema: z.object({
        path: z.string().describe('Path relative to the worktree'),
        startLine: z.number().int().min(1).optional().describe('First line to read (1-based)'),
        endLine: z.number().int().min(1).optional().describe('Last line to read (inclusive)'),
      }),
    },
  );

  const listFiles = tool(
    ({ path, pattern }) => {
      const dir = ws.resolve(path ?? '.');
      const match = matcher(pattern);
      const out: string[] = [];
      for (const f of walk(ws, dir)) {
        if (!match(f.rel)) continue;
        if (out.length >= MAX_LISTED) {
          out.push(`[... more files: narrow the pattern]`);
          break;
        }
        out.push(f.rel);
      }
      return out.length ? out.join('\n') : '(no files)';
    },
    {
      name: 'list_files',
      description: 'Lists the files of the worktree (or of a directory in it), optionally only those matching a glob such as `*.ts` or `src/**/*.test.ts`.',
      schema: z.object({
        path: z.string().optional().describe('Directory relative to the worktree (default: the worktree)'),
        pattern: z.string().optional().describe('Glob the files must match'),
      }),
    },
  );

  const search = tool(
    ({ query, regex, path, pattern, ignoreCase }) => {
      let re: RegExp;
      try {
        re = new RegExp(regex ? query : query.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), ignoreCase ? 'i' : '');
      } catch (err) {
        throw new ToolError(`invalid regular expression: ${(err as Error).message}`);
      }
      const start = ws.resolve(path ?? '.');
      const match = matcher(pattern);
      const st = statSync(start, { throwIfNoEntry: false });
      if (!st) throw new ToolError(`${path} does not exist`);
      const files = st.isDirectory() ? walk(ws, start) : [{ abs: start, rel: ws.display(start) }];
      const out: string[] = [];
      outer: for (const f of files) {
        if (!match(f.rel)) continue;
        let buf: Buffer;
        try {
          if (statSync(f.abs).size > MAX_SEARCH_FILE_BYTES) continue;
          buf = readFileSync(f.abs);
        } catch {
          continue;
        }
        if (buf.includes(0)) continue;
        const lines = buf.toString('utf8').split('\n');
        for (let i = 0; i < lines.length; i++) {
          if (!re.test(lines[i]!)) continue;
          if (out.length >= MAX_MATCHES) {
            out.push(`[... more matches: narrow the search]`);
            break outer;
          }
          out.push(`${f.rel}:${i + 1}: ${lines[i]!.slice(0, 500)}`);
        }
      }
      return out.length ? capOutput(out.join('\n')) : '(no matches)';
    },
    {
      name: 'search',
      description: 'Searches the text files of the worktree for a string (or a regular expression) and returns the matching lines as path:line: text.',
      schema: z.object({
        query: z.string().min(1).describe('Text to find (a JavaScript regular expression if regex is true)'),
        regex: z.boolean().optional(),
        ignoreCase: z.boolean().optional(),
        path: z.string().optional().describe('File or directory relative to the worktree (default: the worktree)'),
        pattern: z.string().optional().describe('Glob the files must match, e.g. `*.ts`'),
      }),
    },
  );

  const editFile = tool(
    ({ path, oldString, newString }) => {
      const abs = ws.resolve(path);
      const text = readText(ws, abs, path);
      if (oldString === '') throw new ToolError('oldString is empty: use write_file to create a file');
      const count = text.split(oldString).length - 1;
      if (count === 0) throw new ToolError(`oldString was not found in ${path}`);
      if (count > 1) throw new ToolError(`oldString matches ${count} times in ${path}: include more surrounding text so that it matches once`);
      const at = text.indexOf(oldString);
      writeFileSync(abs, text.slice(0, at) + newString + text.slice(at + oldString.length));
      return `edited ${ws.display(abs)}`;
    },
    {
      name: 'edit_file',
      description: 'Replaces one exact occurrence of oldString with newString in a file of the worktree. oldString must match exactly once.',
      schema: z.object({
        path: z.string().describe('Path relative to the worktree'),
        oldString: z.string().describe('The exact text to replace (must occur once)'),
        newString: z.string().describe('The text to put in its place'),
      }),
    },
  );

  const writeFile = tool(
    ({ path, content }) => {
      const abs = ws.resolve(path);
      const st = statSync(abs, { throwIfNoEntry: false });
      if (st?.isDirectory()) throw new ToolError(`${path} is a directory`);
      mkdirSync(dirname(abs), { recursive: true });
      // The directories just made are inside the worktree; check again in case one was a symlink.
      ws.resolve(path);
      writeFileSync(abs, content);
      return `wrote ${Buffer.byteLength(content)} bytes to ${ws.display(abs)}`;
    },
    {
      name: 'write_file',
      description: 'Creates or overwrites a file of the worktree with the given content (parent directories are created).',
      schema: z.object({
        path: z.string().describe('Path relative to the worktree'),
        content: z.string(),
      }),
    },
  );

  const runCommand = tool(
    ({ command, timeoutSeconds }) => runShell(ws.root, command, Math.min(timeoutSeconds ?? DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S), options.commandEnv),
    {
      name: 'run_command',
      description: `Runs a shell command (sh -c) in the worktree and returns its exit code and output (stdout and stderr, cut at ${MAX_TOOL_OUTPUT} characters). Default timeout ${DEFAULT_TIMEOUT_S} s, at most ${MAX_TIMEOUT_S} s.`,
      schema: z.object({
        command: z.string().min(1),
        timeoutSeconds: z.number().int().min(1).max(MAX_TIMEOUT_S).optional(),
      }),
    },
  );

  return [readFile, listFiles, search, editFile, writeFile, runCommand];
}

/** Commands running now (their process groups are killed when the runtime is stopped). */
const running = new Set<ChildProcess>();

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

/** Kills every command still running (the runtime is being stopped). */
export function killRunningCommands(): void {
  for (const child of running) killGroup(child);
}

/** `sh -c command` in `cwd`: its exit code and combined output (capped); killed with its group on timeout. */
export function runShell(cwd: string, command: string, timeoutSeconds: number, env: Record<string, string>): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(child);
    const chunks: Buffer[] = [];
    let size = 0;
    let dropped = 0;
    const take = (b: Buffer) => {
      if (size >= MAX_TOOL_OUTPUT) {
        dropped += b.length;
        return;
      }
      chunks.push(b);
      size += b.length;
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutSeconds * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new ToolError(`cannot run sh: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      let output = capOutput(Buffer.concat(chunks).toString('utf8'));
      if (dropped) output += `\n[... ${dropped} more bytes of output cut]`;
      if (timedOut) return reject(new ToolError(`timed out after ${timeoutSeconds} s\n${output}`));
      resolvePromise(`exit code ${code ?? `signal ${signal}`}\n${output}`);
    });
  });
}
