/**
 * Claude Code (`@anthropic-ai/claude-code`, its native binary) as an agent of the agent phase.
 *
 * How it is started (headless, one run per phase):
 * - The binary of the platform package (`@anthropic-ai/claude-code-linux-x64`), resolved from the
 *   `@anthropic-ai/claude-code` package; its directory is mounted read-only in the sandbox.
 * - `-p --output-format stream-json --verbose`: one JSON line per message as it happens (the system
 *   init, each assistant content block, each tool result, the final `result` with usage).
 * - The prompt (the prompt file, then `config.instructions`) on stdin: a small `/bin/sh` wrapper
 *   reads the file inside the sandbox (the worker never has its text at launch) and `exec`s the
 *   binary with the text as a here-document, so no shell stays between the worker and the agent.
 * - Tools: only `Read`, `Edit`, `Write`, `Glob`, `Grep` and `Bash` exist in the session (`--tools`;
 *   no WebFetch/WebSearch, no subagents, MCP, skills, cron or worktrees). The permission mode is
 *   `dontAsk` (nothing prompts: whatever no rule allows is refused), and the user settings written
 *   under the step's HOME allow reading and editing files only under the worktree and any `Bash`
 *   command. Only those settings are read (`--setting-sources user`), so a checkout's own
 *   `.claude/settings*.json` (hooks, permissions, an `apiKeyHelper`) has no effect; hooks are off.
 * - The endpoint through `ANTHROPIC_BASE_URL`; the API key through the settings' `apiKeyHelper`,
 *   a `/bin/sh` one-liner that prints the variable named by `config.apiKeyEnv`. The adapter only
 *   names the variable, the value stays in the sandbox's environment, and Claude Code's own
 *   processes get it without a second copy in `ANTHROPIC_API_KEY` (it sends it as `x-api-key` and
 *   as a bearer token). Without `apiKeyEnv` the helper prints a placeholder: Claude Code refuses to
 *   start with no credential at all ("Not logged in"), and a keyless endpoint ignores it.
 * - Everything that phones home is off (`CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC` and the
 *   individual switches it implies); with it, the only requests are `POST /v1/messages` to the
 *   endpoint (checked by the contract test). Background calls to a "small fast" model use the
 *   configured model, since a gateway may serve no other.
 *
 * Claude Code's own Bash sandbox (settings `sandbox.enabled`, bubblewrap + a proxy of its own) is
 * explicitly off: the worker's bubblewrap sandbox is the boundary (read-only system, only the
 * worktree, HOME and TMPDIR writable, no network but the egress proxy). A nested bubblewrap needs
 * user namespaces inside ours and its network proxy would stand in front of the worker's egress
 * proxy; it would add failure modes and no protection. For the same reason `Bash` is allowed
 * whole: Claude Code's permission rules cannot confine a shell command to a directory, the outer
 * sandbox does.
 */
import { join } from 'node:path';
import { packageVersion, platformPackageDir, requireExecutable, withPromptOnStdin } from './native.js';
import { AgentUnavailableError, type AgentAdapter, type AgentConfig, type AgentEvent, type AgentLaunch, type AgentLaunchContext } from './types.js';

const PACKAGE = '@anthropic-ai/claude-code';

/** The built-in tools the session has (everything else does not exist for the model). */
export const CLAUDE_CODE_TOOLS = ['Read', 'Edit', 'Write', 'Glob', 'Grep', 'Bash'] as const;

/**
 * Environment that turns off everything that is not a model request: telemetry, error reports,
 * auto-update and installation checks, the feedback survey, the plugin marketplace's auto-install,
 * and the auto-memory kept under HOME between sessions (HOME is discarded after the step anyway).
 */
export const CLAUDE_CODE_QUIET_ENV: Readonly<Record<string, string>> = {
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
  DISABLE_AUTOUPDATER: '1',
  DISABLE_TELEMETRY: '1',
  DISABLE_ERROR_REPORTING: '1',
  DISABLE_BUG_COMMAND: '1',
  DISABLE_INSTALLATION_CHECKS: '1',
  CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY: '1',
  CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL: '1',
  CLAUDE_CODE_DISABLE_TERMINAL_TITLE: '1',
  CLAUDE_CODE_DISABLE_AUTO_MEMORY: '1',
};

const WITH_PROMPT_ON_STDIN = withPromptOnStdin('claude-code');

interface Resolved {
  binary: string;
  packageDir: string;
}

let resolved: Resolved | undefined;

/** The native binary of this platform's package, next to `@anthropic-ai/claude-code`. */
export function resolveClaudeCodeBinary(): Resolved {
  if (resolved) return resolved;
  const platformPackage = `${PACKAGE}-${process.platform}-${process.arch}`;
  const packageDir = platformPackageDir(PACKAGE, platformPackage, {
    notInstalled: `Claude Code is not installed: add the ${PACKAGE} package to the worker (pnpm install in services/workflows-runtime)`,
    noBinary: `Claude Code has no native binary for ${process.platform}-${process.arch}: install ${platformPackage} (the optional dependency of ${PACKAGE}, same version)`,
  });
  const binary = join(packageDir, 'claude');
  requireExecutable(binary, `Claude Code's binary ${binary} is missing or not executable: reinstall ${platformPackage}`);
  resolved = { binary, packageDir };
  return resolved;
}

/** `ANTHROPIC_BASE_URL` is the API's root: Claude Code appends `/v1/messages` itself. */
export function claudeCodeBaseUrl(endpoint: string): string {
  return endpoint.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** `~/.claude/settings.json` for the run. */
export function claudeCodeSettings(config: AgentConfig, ctx: AgentLaunchContext): Record<string, unknown> {
  const worktree = ctx.worktree.replace(/\/+$/, '');
  // A path rule that starts with `//` is absolute (one `/` would be relative to the settings file).
  const under = `/${worktree}/**`;
  return {
    apiKeyHelper: config.apiKeyEnv ? `printf '%s' "$${config.apiKeyEnv}"` : "printf '%s' no-key",
    permissions: {
      defaultMode: 'dontAsk',
      // Read rules cover Glob and Grep, Edit rules cover Write.
      allow: [`Read(${under})`, `Edit(${under})`, 'Bash'],
      deny: ['WebFetch', 'WebSearch'],
      disableBypassPermissionsMode: 'disable',
    },
    sandbox: { enabled: false },
    disableAllHooks: true,
    // No Co-Authored-By line or "Generated with" footer in what the agent writes: the worker makes the commits and the pull request.
    attribution: { commit: '', pr: '' },
  };
}

function launch(config: AgentConfig, ctx: AgentLaunchContext): AgentLaunch {
  if (config.apiKeyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(config.apiKeyEnv)) {
    throw new Error(`agent.apiKeyEnv must be an environment variable name, got ${JSON.stringify(config.apiKeyEnv)}`);
  }
  if (!Number.isInteger(config.maxTurns) || config.maxTurns < 1) throw new Error(`agent.maxTurns must be a positive integer, got ${config.maxTurns}`);
  const { binary, packageDir } = resolveClaudeCodeBinary();
  const claude = [
    binary,
    '-p',
    '--output-format',
    'stream-json',
    '--verbose',
    '--model',
    config.model,
    '--max-turns',
    String(config.maxTurns),
    '--tools',
    CLAUDE_CODE_TOOLS.join(','),
    '--permission-mode',
    'dontAsk',
    '--setting-sources',
    'user',
    '--strict-mcp-config',
    // A prompt that starts with `/` is the task's text, not a slash command or skill.
    '--disable-slash-commands',
    '--no-session-persistence',
  ];
  const instructions = config.instructions?.trim() ? `\n\n${config.instructions.trim()}` : '';
  const env: Record<string, string> = {
    ...CLAUDE_CODE_QUIET_ENV,
    ANTHROPIC_BASE_URL: claudeCodeBaseUrl(config.endpoint),
    ANTHROPIC_SMALL_FAST_MODEL: config.model,
    ANTHROPIC_DEFAULT_HAIKU_MODEL: config.model,
    CLAUDE_CODE_SUBAGENT_MODEL: config.model,
  };
  if (ctx.traceparent) env['TRACEPARENT'] = ctx.traceparent;
  return {
    argv: ['/bin/sh', '-c', WITH_PROMPT_ON_STDIN, 'claude-code', ctx.promptFile, instructions, ...claude],
    env,
    files: [{ path: join(ctx.home, '.claude', 'settings.json'), content: `${JSON.stringify(claudeCodeSettings(config, ctx), null, 2)}\n` }],
    readOnly: [packageDir],
  };
}

// ---- stream-json ---------------------------------------------------------------------------------

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * Claude Code writes one `assistant` line per content block, all with the message id of the model
 * response they came from. A response is one turn: the first line seen for a (session, message id)
 * counts it, and the same line read again counts it again (a transcript parsed twice gives the same
 * events), keyed by the line's own uuid. Bounded: the oldest entries go first.
 */
const firstLineOfMessage = new Map<string, string>();
const MAX_TRACKED_MESSAGES = 10_000;

function isFirstLineOfResponse(line: Json, message: Json): boolean {
  const id = typeof message['id'] === 'string' ? message['id'] : undefined;
  const uuid = typeof line['uuid'] === 'string' ? line['uuid'] : undefined;
  if (!id || !uuid) return true;
  const key = `${String(line['session_id'] ?? '')}\u0000${id}`;
  const first = firstLineOfMessage.get(key);
  if (first !== undefined) return first === uuid;
  firstLineOfMessage.set(key, uuid);
  if (firstLineOfMessage.size > MAX_TRACKED_MESSAGES) firstLineOfMessage.delete(firstLineOfMessage.keys().next().value!);
  return true;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((b) => (isObj(b) && typeof b['text'] === 'string' ? b['text'] : '')).join('');
  return content === undefined || content === null ? '' : JSON.stringify(content);
}

function assistantEvents(line: Json): AgentEvent[] {
  const message = line['message'];
  if (!isObj(message)) return [];
  // `<synthetic>`: a message Claude Code made up itself (an API error, "Not logged in"): no model
  // answered, and the `result` line that follows reports the error.
  if (message['model'] === '<synthetic>') return [];
  const events: AgentEvent[] = [];
  if (isFirstLineOfResponse(line, message)) events.push({ type: 'turn' });
  for (const block of Array.isArray(message['content']) ? message['content'] : []) {
    if (!isObj(block)) continue;
    if (block['type'] === 'text' && typeof block['text'] === 'string' && block['text'] !== '') {
      events.push({ type: 'message', role: 'assistant', text: block['text'] });
    } else if (block['type'] === 'tool_use' && typeof block['name'] === 'string') {
      const id = typeof block['id'] === 'string' ? block['id'] : undefined;
      events.push({ type: 'tool_call', name: block['name'], input: JSON.stringify(block['input'] ?? {}), ...(id ? { id } : {}) });
    }
  }
  return events;
}

function userEvents(line: Json): AgentEvent[] {
  const message = line['message'];
  if (!isObj(message)) return [];
  const content = message['content'];
  if (typeof content === 'string') return content ? [{ type: 'message', role: 'user', text: content }] : [];
  const events: AgentEvent[] = [];
  for (const block of Array.isArray(content) ? content : []) {
    if (!isObj(block)) continue;
    if (block['type'] === 'tool_result') {
      const id = typeof block['tool_use_id'] === 'string' ? block['tool_use_id'] : undefined;
      events.push({ type: 'tool_result', output: textOf(block['content']), ...(id ? { id } : {}), ...(block['is_error'] === true ? { isError: true } : {}) });
    } else if (block['type'] === 'text' && typeof block['text'] === 'string' && block['text'] !== '') {
      events.push({ type: 'message', role: 'user', text: block['text'] });
    }
  }
  return events;
}

/**
 * The session's tokens, per model, from the `result` line. (The `assistant` lines carry the usage of
 * the response's first stream event, before its output was generated, so they are not counted.)
 * Input tokens include the cache's reads and writes: everything the model read.
 */
function usageEvents(line: Json): AgentEvent[] {
  const byModel = line['modelUsage'];
  if (isObj(byModel) && Object.keys(byModel).length > 0) {
    return Object.entries(byModel).flatMap(([model, u]): AgentEvent[] =>
      isObj(u)
        ? [
            {
              type: 'usage',
              model,
              inputTokens: num(u['inputTokens']) + num(u['cacheReadInputTokens']) + num(u['cacheCreationInputTokens']),
              outputTokens: num(u['outputTokens']),
            },
          ]
        : [],
    );
  }
  const u = line['usage'];
  if (!isObj(u)) return [];
  const inputTokens = num(u['input_tokens']) + num(u['cache_read_input_tokens']) + num(u['cache_creation_input_tokens']);
  const outputTokens = num(u['output_tokens']);
  return inputTokens + outputTokens > 0 ? [{ type: 'usage', inputTokens, outputTokens }] : [];
}

function resultEvents(line: Json): AgentEvent[] {
  const events = usageEvents(line);
  const subtype = typeof line['subtype'] === 'string' ? line['subtype'] : '';
  const errors = Array.isArray(line['errors']) ? line['errors'].filter((e): e is string => typeof e === 'string' && e !== '') : [];
  const result = typeof line['result'] === 'string' ? line['result'] : '';
  if (line['is_error'] !== true && subtype === 'success') {
    events.push({ type: 'final', text: result });
    return events;
  }
  const detail = errors.join('; ') || result;
  let message: string;
  if (subtype === 'error_max_turns') {
    message = `Claude Code stopped at its turn limit (--max-turns): ${detail || 'maximum number of turns reached'}`;
  } else {
    // An API error ends the session with subtype `success`, is_error and terminal_reason `api_error`.
    const reason = subtype && subtype !== 'success' ? subtype : typeof line['terminal_reason'] === 'string' ? line['terminal_reason'] : 'error';
    const status = typeof line['api_error_status'] === 'number' ? `, HTTP ${line['api_error_status']}` : '';
    message = `Claude Code failed (${reason}${status}): ${detail || 'no details'}`;
  }
  events.push({ type: 'error', message });
  return events;
}

export function parseClaudeCodeLine(text: string): AgentEvent[] {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return [];
  let line: unknown;
  try {
    line = JSON.parse(trimmed);
  } catch {
    return [];
  }
  if (!isObj(line)) return [];
  switch (line['type']) {
    case 'assistant':
      return assistantEvents(line);
    case 'user':
      return userEvents(line);
    case 'result':
      return resultEvents(line);
    default:
      // `system` (init, api_retry, …), `stream_event`, `rate_limit_event`, …: nothing the worker counts.
      return [];
  }
}

export const claudeCodeAdapter: AgentAdapter = {
  kind: 'claude-code',
  launch,
  parseLine: parseClaudeCodeLine,
  version: () => `claude-code ${packageVersion(resolveClaudeCodeBinary().packageDir)}`,
};
