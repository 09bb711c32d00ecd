/**
 * Agent adapters: how the agent phase runs a real coding agent (Codex CLI, Claude Code, the LangChain
 * runtime of packages/agent) inside the phase's sandbox, and how the worker reads what it did.
 *
 * The worker never trusts the agent: it builds the command line and the files the agent starts with,
 * runs it in the sandbox like any other command, and reads the agent's stdout (JSON lines) only as
 * data, through the adapter's parser.
 */

/** The agent kinds beside `command` (a plain shell command, the default). */
export type AgentKind = 'codex' | 'claude-code' | 'langchain';

/** The wire format of the model endpoint. */
export type ModelApi = 'responses' | 'chat' | 'messages';

/** `spec.agent` of a definition, as the worker gets it (validated by the service). */
export interface AgentConfig {
  kind: AgentKind;
  /** The model name sent to the endpoint, e.g. `gpt-5-codex`, `claude-sonnet-4-5`. */
  model: string;
  /** Base URL of an OpenAI- or Anthropic-compatible API, e.g. `https://api.openai.com/v1`, `https://api.anthropic.com`. */
  endpoint: string;
  /**
   * Wire format: codex speaks `responses` (Codex CLI 0.169 has no other), claude-code `messages`, langchain `chat`,
   * `responses` or `messages`. Absent: the kind's default ({@link defaultApi}).
   */
  api?: ModelApi;
  /**
   * Name of the environment variable that holds the API key inside the sandbox (the definition's
   * secret reference, scoped to the agent phase). Absent: the endpoint needs no key.
   */
  apiKeyEnv?: string;
  /** The most model calls (turns) the agent may make; the worker stops it after that. */
  maxTurns: number;
  /** Appended to the task prompt. */
  instructions?: string;
}

/** Where things are inside the sandbox when the agent starts. All paths are sandbox paths. */
export interface AgentLaunchContext {
  /** The task prompt (read-only file). */
  promptFile: string;
  /** The worktree, the agent's working directory. */
  worktree: string;
  /** The step's HOME (writable, empty at start, discarded after the step). */
  home: string;
  /** The step's TMPDIR (writable). */
  tmp: string;
  /** W3C trace context of the agent phase's span, when the run is traced. */
  traceparent?: string;
}

/** How to start the agent. */
export interface AgentLaunch {
  /** argv[0] is an absolute path that is visible in the sandbox (under /usr or one of {@link readOnly}). */
  argv: string[];
  /** Environment added to the sandbox's own (HOME, TMPDIR, PATH, proxy settings are set by the worker). */
  env: Record<string, string>;
  /** Files the worker writes before the start, at sandbox paths under the step's HOME or TMPDIR. */
  files: Array<{ path: string; content: string }>;
  /** Host directories the sandbox mounts read-only at the same path so argv[0] can run (the CLI's package). */
  readOnly: string[];
  /** Text for the agent's stdin (the prompt, for CLIs that read it there). Absent: stdin is empty. */
  stdin?: string;
}

/** One thing the agent did, parsed from its stdout. */
export type AgentEvent =
  /** A model call was answered (the unit `maxTurns` counts). */
  | { type: 'turn' }
  | { type: 'message'; role: 'assistant' | 'user'; text: string }
  | { type: 'tool_call'; name: string; input: string; id?: string }
  | { type: 'tool_result'; output: string; id?: string; isError?: boolean }
  /** Tokens of one model call (or of the agent's whole session, when that is all the agent reports). */
  | { type: 'usage'; model?: string; inputTokens: number; outputTokens: number }
  /** The agent's last answer. */
  | { type: 'final'; text: string }
  | { type: 'error'; message: string };

export interface AgentAdapter {
  kind: AgentKind;
  /** How to start the agent. Throws {@link AgentUnavailableError} when it cannot run on this worker. */
  launch(config: AgentConfig, ctx: AgentLaunchContext): AgentLaunch;
  /** Reads one line of the agent's stdout. Lines that are not the agent's JSON are ignored (`[]`). */
  parseLine(line: string): AgentEvent[];
  /** What runs, with its version, for the run's provenance (e.g. `codex-cli 0.169.0`); `unknown` when it cannot be told. */
  version(): string;
}

/** The agent cannot run here (its CLI is not installed, or cannot start); the message says what to do. */
export class AgentUnavailableError extends Error {
  override name = 'AgentUnavailableError';
}

export function defaultApi(kind: AgentKind): ModelApi {
  return kind === 'claude-code' ? 'messages' : kind === 'codex' ? 'responses' : 'chat';
}
