/**
 * The Codex CLI (`@openai/codex` 0.169.0, its native binary) as an agent of the agent phase.
 *
 * How it is started (one `codex exec` per phase):
 * - The native binary of the platform package (`@openai/codex-linux-x64`, an alias of
 *   `@openai/codex@0.169.0-linux-x64`), resolved from the `@openai/codex` package as its own
 *   `bin/codex.js` does (`vendor/<target triple>/bin/codex`); the platform package's directory is
 *   mounted read-only in the sandbox. The Node wrapper is not used: it only finds and execs the binary.
 * - `exec --json`: non-interactive, one JSON line per thread event on stdout (see {@link parseCodexLine}).
 *   `--ephemeral` (no session files), `--skip-git-repo-check` (a worktree's `.git` may be a file),
 *   `--strict-config` (a key of the config below that this version does not know is an error, not
 *   silently ignored), `--color never`, `-` (the prompt on stdin).
 * - The prompt (the prompt file, then `config.instructions`) on stdin: a small `/bin/sh` wrapper reads
 *   the file inside the sandbox and `exec`s the binary with the text as a here-document, so no shell
 *   stays between the worker and the agent.
 * - `CODEX_HOME` is `<HOME>/.codex`, with a `config.toml` written by the worker: the model; one model
 *   provider whose `base_url` is `config.endpoint` (its query string, if any, as `query_params`),
 *   `wire_api = "responses"`, `env_key = config.apiKeyEnv` (codex reads the key from that variable and
 *   sends it as a bearer token; without `apiKeyEnv` no `env_key` and no `Authorization` header, which
 *   codex accepts for a custom provider), bounded retries (`request_max_retries`,
 *   `stream_max_retries`, `features.unbounded_connection_retries = false`) and no WebSocket transport.
 *   Codex 0.169.0 speaks only the Responses API: `wire_api` "chat" was removed ("`wire_api = "chat"` is
 *   no longer supported"), so `api: chat` or `messages` is refused with {@link AgentUnavailableError}.
 * - Approvals `never`. Everything that is not a model request is off: the update check, analytics,
 *   feedback, OpenTelemetry export, history, the hosted web search tool, plugins, apps, remote
 *   plugins, tool suggestions, model discovery, image generation, browser and computer use, sub-agents,
 *   goals, the background daemon, request compression. Without these settings codex 0.169.0 looks up
 *   `api.github.com` (plugin catalog), `chatgpt.com` (plugins, model catalog) and `ab.chatgpt.com`
 *   (OTLP metrics) at start; with them it connects to nothing but the endpoint (checked with strace in
 *   the contract test's development, asserted there through a recording proxy).
 *
 * Codex's own sandbox (bubblewrap + seccomp, Landlock in legacy mode) is disabled
 * (`--dangerously-bypass-approvals-and-sandbox`, `sandbox_mode = "danger-full-access"`): the worker's
 * bubblewrap sandbox is the boundary (its own user, its own network namespace, a read-only system,
 * only the worktree, HOME and TMPDIR writable). Tried: codex's `workspace-write` sandbox does nest
 * inside a bubblewrap like ours on this kernel (its commands got a second user namespace and a
 * seccomp filter), but it only confines the commands codex spawns, not codex itself, which holds the
 * key and writes files (apply_patch) with the rights our sandbox gives it, so it adds no boundary.
 * It would add failure modes: it needs unprivileged user namespaces inside ours (refused on hosts that
 * restrict them), it denies network to the commands (an online phase's package installs through the
 * worker's egress proxy would fail), and it makes HOME and `.git` read-only to them.
 *
 * Turns: `codex exec --json` has no per-model-call event (`turn.*` is the whole prompt, usage comes
 * once, cumulative, with `turn.completed`) and codex has no max-turns flag; see {@link parseCodexLine}
 * for how model responses are counted.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { platformPackageDir, requireExecutable, withPromptOnStdin } from './native.js';
import { AgentUnavailableError, type AgentAdapter, type AgentConfig, type AgentEvent, type AgentLaunch, type AgentLaunchContext } from './types.js';

const PACKAGE = '@openai/codex';
/** The version this adapter was written and tested against (pinned in package.json). */
export const CODEX_VERSION = '0.169.0';

/** The model provider's id in config.toml. */
const PROVIDER_ID = 'endpoint';

/** Retries of a failed request / a dropped stream before the turn fails (codex's defaults: 4 and 5, plus unbounded connection retries). */
const REQUEST_MAX_RETRIES = 2;
const STREAM_MAX_RETRIES = 2;

/** Features of codex 0.169.0 turned off: each either reaches a service other than the endpoint or gives the model a tool we do not want. */
export const CODEX_DISABLED_FEATURES = [
  'plugins',
  'apps',
  'remote_plugin',
  'plugin_sharing',
  'tool_suggest',
  'api_key_model_discovery',
  'enable_request_compression',
  'image_generation',
  'browser_use',
  'computer_use',
  'in_app_browser',
  'goals',
  'daemon_auto_start',
  'skill_mcp_dependency_install',
  'unbounded_connection_retries',
] as const;

/** Rust target triples of the platform packages, as the package's bin/codex.js maps them. */
const TARGETS: Record<string, string> = {
  'linux-x64': 'x86_64-unknown-linux-musl',
  'linux-arm64': 'aarch64-unknown-linux-musl',
  'darwin-x64': 'x86_64-apple-darwin',
  'darwin-arm64': 'aarch64-apple-darwin',
};

const WITH_PROMPT_ON_STDIN = withPromptOnStdin('codex');

interface Resolved {
  binary: string;
  packageDir: string;
}

let resolved: Resolved | undefined;

/** The native binary of this platform's package, next to `@openai/codex`, checked to start (`--version`). */
export function resolveCodexBinary(): Resolved {
  if (resolved) return resolved;
  const platform = `${process.platform}-${process.arch}`;
  const target = TARGETS[platform];
  if (!target) throw new AgentUnavailableError(`the Codex CLI has no native binary for ${platform}`);
  const platformPackage = `${PACKAGE}-${platform}`;
  const packageDir = platformPackageDir(PACKAGE, platformPackage, {
    notInstalled: `the Codex CLI is not installed: add the ${PACKAGE} package (${CODEX_VERSION}) to the worker (pnpm install in services/workflows-runtime)`,
    noBinary: `the Codex CLI has no native binary here: install ${platformPackage} (the optional dependency of ${PACKAGE}, npm:${PACKAGE}@${CODEX_VERSION}-${platform})`,
  });
  const binary = join(packageDir, 'vendor', target, 'bin', 'codex');
  requireExecutable(binary, `the Codex CLI's binary ${binary} is missing or not executable: reinstall ${platformPackage}`);
  let version: string;
  try {
    version = execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const err = e as { stderr?: string | Buffer; message: string };
    const detail = String(err.stderr ?? '').trim() || err.message;
    throw new AgentUnavailableError(`the Codex CLI's binary ${binary} cannot run on this worker: ${detail}`);
  }
  if (!version.endsWith(` ${CODEX_VERSION}`)) {
    throw new AgentUnavailableError(
      `the Codex CLI's binary ${binary} is "${version}", this worker is written for ${CODEX_VERSION}: install ${PACKAGE}@${CODEX_VERSION}`,
    );
  }
  resolved = { binary, packageDir };
  return resolved;
}

/** A TOML basic string (JSON's escapes are TOML's). */
const str = (s: string): string => JSON.stringify(s);

/** `base_url` and `query_params` of the provider: codex appends `/responses` to `base_url` and adds the query itself. */
export function codexProviderUrl(endpoint: string): { baseUrl: string; query: Record<string, string> } {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`agent.endpoint must be an absolute http(s) URL, got ${JSON.stringify(endpoint)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`agent.endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  const query = Object.fromEntries(url.searchParams.entries());
  url.search = '';
  url.hash = '';
  return { baseUrl: url.toString().replace(/\/+$/, ''), query };
}

/** `$CODEX_HOME/config.toml` for the run. */
export function codexConfigToml(config: AgentConfig): string {
  const { baseUrl, query } = codexProviderUrl(config.endpoint);
  const lines = [
    '# Written by the worker for one agent phase (codex exec).',
    `model = ${str(config.model)}`,
    `model_provider = ${str(PROVIDER_ID)}`,
    'approval_policy = "never"',
    'sandbox_mode = "danger-full-access"',
    'check_for_update_on_startup = false',
    'web_search = "disabled"',
    '',
    '[analytics]',
    'enabled = false',
    '',
    '[feedback]',
    'enabled = false',
    '',
    '[otel]',
    'exporter = "none"',
    'trace_exporter = "none"',
    'metrics_exporter = "none"',
    'log_user_prompt = false',
    '',
    '[history]',
    'persistence = "none"',
    '',
    '[agents]',
    'enabled = false',
    '',
    '[features]',
    ...CODEX_DISABLED_FEATURES.map((f) => `${f} = false`),
    '',
    `[model_providers.${PROVIDER_ID}]`,
    `name = ${str(PROVIDER_ID)}`,
    `base_url = ${str(baseUrl)}`,
    'wire_api = "responses"',
    ...(config.apiKeyEnv ? [`env_key = ${str(config.apiKeyEnv)}`] : []),
    `request_max_retries = ${REQUEST_MAX_RETRIES}`,
    `stream_max_retries = ${STREAM_MAX_RETRIES}`,
    'supports_websockets = false',
    // The key is codex's own: the commands it runs do not get it (codex keeps *KEY* variables by default).
    ...(config.apiKeyEnv ? ['', '[shell_environment_policy]', `exclude = [${str(config.apiKeyEnv)}]`] : []),
  ];
  if (Object.keys(query).length > 0) {
    lines.push('', `[model_providers.${PROVIDER_ID}.query_params]`, ...Object.entries(query).map(([k, v]) => `${str(k)} = ${str(v)}`));
  }
  return `${lines.join('\n')}\n`;
}

function launch(config: AgentConfig, ctx: AgentLaunchContext): AgentLaunch {
  if (config.apiKeyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(config.apiKeyEnv)) {
    throw new Error(`agent.apiKeyEnv must be an environment variable name, got ${JSON.stringify(config.apiKeyEnv)}`);
  }
  if (!Number.isInteger(config.maxTurns) || config.maxTurns < 1) throw new Error(`agent.maxTurns must be a positive integer, got ${config.maxTurns}`);
  const api = config.api ?? 'responses';
  if (api !== 'responses') {
    throw new AgentUnavailableError(
      `the Codex CLI ${CODEX_VERSION} speaks only the OpenAI Responses API (POST /responses); agent.api "${api}" is not supported: use api "responses" with an endpoint that serves it`,
    );
  }
  const toml = codexConfigToml(config);
  const { binary, packageDir } = resolveCodexBinary();
  const codexHome = join(ctx.home, '.codex');
  const codex = [
    binary,
    'exec',
    '--json',
    '--color',
    'never',
    '--strict-config',
    '--ephemeral',
    '--skip-git-repo-check',
    '--dangerously-bypass-approvals-and-sandbox',
    '--model',
    config.model,
    '--cd',
    ctx.worktree,
    '-',
  ];
  const instructions = config.instructions?.trim() ? `\n\n${config.instructions.trim()}` : '';
  const env: Record<string, string> = { CODEX_HOME: codexHome, NO_COLOR: '1' };
  if (ctx.traceparent) env['TRACEPARENT'] = ctx.traceparent;
  return {
    argv: ['/bin/sh', '-c', WITH_PROMPT_ON_STDIN, 'codex', ctx.promptFile, instructions, ...codex],
    env,
    files: [{ path: join(codexHome, 'config.toml'), content: toml }],
    readOnly: [packageDir],
  };
}

// ---- exec --json ---------------------------------------------------------------------------------

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

function changesText(item: Json): string {
  const changes = Array.isArray(item['changes']) ? item['changes'] : [];
  return changes
    .filter(isObj)
    .map((c) => `${text(c['kind']) || 'change'} ${text(c['path'])}`)
    .join('\n');
}

function mcpOutput(item: Json): string {
  const error = item['error'];
  if (isObj(error)) return text(error['message']);
  const result = item['result'];
  if (!isObj(result)) return '';
  const content = Array.isArray(result['content']) ? result['content'] : [];
  const texts = content.map((c) => (isObj(c) && typeof c['text'] === 'string' ? c['text'] : JSON.stringify(c)));
  return texts.length > 0 ? texts.join('\n') : JSON.stringify(result['structured_content'] ?? null);
}

/** A tool the model called, as the item that stands for it when it starts. */
function toolCall(item: Json, id: string | undefined): AgentEvent | undefined {
  const idPart = id ? { id } : {};
  switch (item['type']) {
    case 'command_execution':
      return { type: 'tool_call', name: 'command_execution', input: text(item['command']), ...idPart };
    case 'file_change':
      return { type: 'tool_call', name: 'file_change', input: changesText(item), ...idPart };
    case 'mcp_tool_call':
      return { type: 'tool_call', name: `mcp:${text(item['server'])}/${text(item['tool'])}`, input: JSON.stringify(item['arguments'] ?? {}), ...idPart };
    case 'collab_tool_call':
      return { type: 'tool_call', name: `collab:${text(item['tool'])}`, input: text(item['prompt']), ...idPart };
    case 'todo_list':
      return { type: 'tool_call', name: 'update_plan', input: JSON.stringify(item['items'] ?? []), ...idPart };
    default:
      return undefined;
  }
}

/** What a tool gave back, from the item that stands for it when it completes. */
function toolResult(item: Json, id: string | undefined): AgentEvent | undefined {
  const idPart = id ? { id } : {};
  const status = text(item['status']);
  switch (item['type']) {
    case 'command_execution': {
      const exit = item['exit_code'];
      const isError = status !== 'completed' || (typeof exit === 'number' && exit !== 0);
      return { type: 'tool_result', output: text(item['aggregated_output']), ...idPart, ...(isError ? { isError } : {}) };
    }
    case 'file_change': {
      const isError = status !== 'completed';
      return { type: 'tool_result', output: `${status}\n${changesText(item)}`, ...idPart, ...(isError ? { isError } : {}) };
    }
    case 'mcp_tool_call': {
      const isError = status !== 'completed' || isObj(item['error']);
      return { type: 'tool_result', output: mcpOutput(item), ...idPart, ...(isError ? { isError } : {}) };
    }
    case 'collab_tool_call': {
      const isError = status === 'failed';
      return { type: 'tool_result', output: JSON.stringify(item['agents_states'] ?? {}), ...idPart, ...(isError ? { isError } : {}) };
    }
    default:
      return undefined;
  }
}

/**
 * Reads one line of `codex exec --json` (codex 0.169.0: `thread.started`, `turn.started`,
 * `item.started` / `item.updated` / `item.completed` with an `item` of type `agent_message`,
 * `reasoning`, `command_execution`, `file_change`, `mcp_tool_call`, `collab_tool_call`,
 * `web_search`, `todo_list` or `error`, `turn.completed` with the usage, `turn.failed`, `error`).
 *
 * Turns: codex reports no per-response event, so a model response is counted where the JSONL shows
 * it, without state (the worker may read several agents at once through this one adapter):
 * - every tool call the model made starts an item (`command_execution`, `file_change` (apply_patch),
 *   `mcp_tool_call`, `collab_tool_call`; `todo_list` started or updated for `update_plan`): one turn
 *   each. A response's text before its calls (a preamble `agent_message`) is part of that turn.
 * - the last response of the run has no tool call (that is what ends codex's turn): one turn at
 *   `turn.completed`.
 * So a response with several parallel calls counts once per call (more, never fewer, than the model
 * calls), and calls that start no item (`write_stdin` polling a running command, `view_image`) are
 * not seen.
 *
 * Each `agent_message` is a `message` and a `final`: the JSONL does not say which message is the last
 * until the run ends, so the last `final` is the answer. Usage is the run's total, at `turn.completed`
 * (input tokens include the cached ones). `turn.failed` and the stream's `error` are `error` events
 * (a failed turn gives both, with the same message), but for the stream's retry notices
 * ("Reconnecting... 1/2 (…)");
 * codex's non-fatal notices (`error` items: unknown model metadata, deprecations) are not events.
 */
export function parseCodexLine(line: string): AgentEvent[] {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return [];
  let ev: unknown;
  try {
    ev = JSON.parse(trimmed);
  } catch {
    return [];
  }
  if (!isObj(ev)) return [];
  const item = isObj(ev['item']) ? ev['item'] : undefined;
  const id = item && typeof item['id'] === 'string' ? item['id'] : undefined;
  switch (ev['type']) {
    case 'item.started': {
      if (!item) return [];
      const call = toolCall(item, id);
      return call ? [{ type: 'turn' }, call] : [];
    }
    case 'item.updated': {
      // A plan changed: the model called update_plan again. (file_change updates are the same patch.)
      if (!item || item['type'] !== 'todo_list') return [];
      const call = toolCall(item, id);
      return call ? [{ type: 'turn' }, call] : [];
    }
    case 'item.completed': {
      if (!item) return [];
      if (item['type'] === 'agent_message') {
        const t = text(item['text']);
        return [
          { type: 'message', role: 'assistant', text: t },
          { type: 'final', text: t },
        ];
      }
      const result = toolResult(item, id);
      return result ? [result] : [];
    }
    case 'turn.completed': {
      const events: AgentEvent[] = [{ type: 'turn' }];
      const usage = ev['usage'];
      if (isObj(usage)) events.push({ type: 'usage', inputTokens: num(usage['input_tokens']), outputTokens: num(usage['output_tokens']) });
      return events;
    }
    case 'turn.failed': {
      const error = ev['error'];
      return [{ type: 'error', message: `codex: the turn failed: ${(isObj(error) && text(error['message'])) || 'no details'}` }];
    }
    case 'error': {
      const message = text(ev['message']);
      // "Reconnecting... 1/2 (…)": a retry (request_max_retries / stream_max_retries), not the end.
      if (/^Reconnecting\.\.\. \d+\/\d+/.test(message)) return [];
      return [{ type: 'error', message: `codex: ${message || 'unknown error'}` }];
    }
    case 'request_user_input':
      // The model asked the user a question (plan mode only); nobody answers in exec.
      return [
        { type: 'turn' },
        {
          type: 'tool_call',
          name: 'request_user_input',
          input: JSON.stringify(ev['questions'] ?? []),
          ...(typeof ev['call_id'] === 'string' ? { id: ev['call_id'] } : {}),
        },
      ];
    default:
      // thread.started, turn.started, item.plan.delta, …: nothing the worker counts.
      return [];
  }
}

export const codexAdapter: AgentAdapter = {
  kind: 'codex',
  launch,
  parseLine: parseCodexLine,
  version: () => `codex-cli ${CODEX_VERSION}`,
};
