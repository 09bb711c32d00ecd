/**
 * One agent run: reads the prompt, runs the LangChain agent in the worktree with the budgets, writes
 * its events to stdout and its spans to --spans-file, and says how it ended (the process's exit code).
 */
import { readFileSync } from 'node:fs';
import { createAgent } from 'langchain';
import { parseAgentArgs, UsageError, USAGE, type AgentOptions } from './args.js';
import { jsonLines, type EventSink } from './events.js';
import { budgetMiddleware, BudgetExceeded, eventsMiddleware, telemetryMiddleware, type RunState } from './middleware.js';
import { createModel, genAiSystem, type Env } from './model.js';
import { AgentTelemetry } from './telemetry.js';
import { createTools, killRunningCommands } from './tools.js';
import { Workspace } from './workspace.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_BUDGET = 3;

export const SYSTEM_PROMPT = `You are a coding agent working in a git worktree (your working directory). Do the task you are given by
reading and changing the files of the worktree with your tools, and check your work by running commands
(tests, builds) with run_command. Paths are relative to the worktree; you cannot leave it. Do not commit:
your changes are collected from the worktree when you finish. When you are done, answer with a short
summary of what you changed and how you checked it.`;

export interface RuntimeIo {
  argv: string[];
  env: Env;
  cwd: string;
  /** One event line (stdout). */
  stdout: (text: string) => void;
  /** Log lines (stderr). */
  stderr: (text: string) => void;
  /** Called with a function that writes the spans now (for a signal handler). */
  onStop?: (stop: (reason: string) => void) => void;
}

function lastText(messages: unknown[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { type?: string; text?: string; _getType?: () => string };
    const type = m._getType?.() ?? m.type;
    if (type === 'ai') return m.text ?? '';
  }
  return '';
}

/** The environment of run_command: the runtime's, without the API key. */
function commandEnv(env: Env, apiKeyEnv: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && k !== apiKeyEnv) out[k] = v;
  return out;
}

export async function runAgent(io: RuntimeIo): Promise<number> {
  let options: AgentOptions;
  try {
    options = parseAgentArgs(io.argv, io.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr(`agent: ${err.message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const emit: EventSink = jsonLines(io.stdout);
  const system = genAiSystem(options.api);
  const telemetry = new AgentTelemetry({ ...(options.traceparent ? { traceparent: options.traceparent } : {}), model: options.model, system });
  const finish = (error?: string) => {
    try {
      telemetry.finish(options.spansFile, error);
    } catch (err) {
      io.stderr(`agent: cannot write the spans to ${options.spansFile}: ${(err as Error).message}\n`);
    }
  };
  io.onStop?.((reason) => {
    killRunningCommands();
    emit({ type: 'error', message: reason });
    finish(reason);
  });
  const fail = (message: string, code: number) => {
    emit({ type: 'error', message });
    io.stderr(`agent: ${message}\n`);
    finish(message);
    return code;
  };

  try {
    let prompt = readFileSync(options.promptFile, 'utf8');
    if (options.instructionsFile) prompt += `\n\n${readFileSync(options.instructionsFile, 'utf8')}`;
    let apiKey: string | undefined;
    if (options.apiKeyEnv) {
      apiKey = io.env[options.apiKeyEnv];
      if (!apiKey) return fail(`the API key variable ${options.apiKeyEnv} is not set`, EXIT_FAILED);
    }
    const ws = new Workspace(io.cwd);
    const state: RunState = { modelCalls: 0, toolCalls: 0 };
    const model = createModel({ api: options.api, model: options.model, endpoint: options.endpoint, ...(apiKey ? { apiKey } : {}), env: io.env });
    const agent = createAgent({
      model,
      tools: createTools(ws, { commandEnv: commandEnv(io.env, options.apiKeyEnv) }),
      systemPrompt: SYSTEM_PROMPT,
      middleware: [
        budgetMiddleware(state, { maxTurns: options.maxTurns, ...(options.maxToolCalls ? { maxToolCalls: options.maxToolCalls } : {}) }),
        telemetryMiddleware(telemetry, { model: options.model, system, serverAddress: new URL(options.endpoint).hostname }),
        eventsMiddleware(emit, { model: options.model }),
      ],
    });
    io.stderr(`agent: ${options.model} over ${options.api} at ${options.endpoint}, at most ${options.maxTurns} model calls\n`);
    let result;
    try {
      // Each turn is a few graph steps (the model, the tools, the middleware): never the limit that stops the agent.
      result = await agent.invoke({ messages: [{ role: 'user', content: prompt }] }, { recursionLimit: options.maxTurns * 10 + 50 });
    } catch (err) {
      if (state.stopped) return fail(state.stopped.message, EXIT_BUDGET);
      throw err;
    }
    const text = lastText(result.messages as unknown[]);
    emit({ type: 'final', text });
    telemetry.root.setAttributes({ 'ameide.agent.model_calls': state.modelCalls, 'ameide.agent.tool_calls': state.toolCalls });
    finish();
    return EXIT_OK;
  } catch (err) {
    if (err instanceof BudgetExceeded) return fail(err.message, EXIT_BUDGET);
    return fail(describe(err), EXIT_FAILED);
  }
}

/** One line for an error: the message, with its causes. */
function describe(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; e && i < 12; i++) {
    const msg = e instanceof Error ? e.message : String(e);
    if (msg && !parts.some((p) => p.includes(msg))) parts.push(msg);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ') || 'the agent failed';
}
