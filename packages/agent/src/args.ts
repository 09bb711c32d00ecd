import { parseArgs } from 'node:util';

export type ModelApi = 'chat' | 'responses' | 'messages';

export interface AgentOptions {
  promptFile: string;
  model: string;
  /** Base URL of the model API. */
  endpoint: string;
  api: ModelApi;
  /** The environment variable that holds the API key; absent: the endpoint takes no key. */
  apiKeyEnv?: string;
  maxTurns: number;
  maxToolCalls?: number;
  instructionsFile?: string;
  spansFile?: string;
  traceparent?: string;
}

/** A command line the runtime cannot run with (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = `usage: agent --prompt-file FILE --model NAME --endpoint URL [--api chat|responses|messages]
             [--api-key-env NAME] [--max-turns N] [--max-tool-calls N] [--instructions-file FILE]
             [--spans-file FILE] [--traceparent TRACEPARENT]`;

function positiveInt(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`--${flag} must be a positive integer (got "${value}")`);
  return Number(value);
}

/** Parses the runtime's flags; `traceparent` falls back to TRACEPARENT of `env`. */
export function parseAgentArgs(argv: string[], env: Record<string, string | undefined> = {}): AgentOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'prompt-file': { type: 'string' },
        model: { type: 'string' },
        endpoint: { type: 'string' },
        api: { type: 'string', default: 'chat' },
        'api-key-env': { type: 'string' },
        'max-turns': { type: 'string' },
        'max-tool-calls': { type: 'string' },
        'instructions-file': { type: 'string' },
        'spans-file': { type: 'string' },
        traceparent: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const required = (flag: 'prompt-file' | 'model' | 'endpoint'): string => {
    const v = values[flag];
    if (!v) throw new UsageError(`--${flag} is required`);
    return v;
  };
  const api = values.api;
  if (api !== 'chat' && api !== 'responses' && api !== 'messages') throw new UsageError(`--api must be chat, responses or messages (got "${api}")`);
  const endpoint = required('endpoint');
  try {
    const u = new URL(endpoint);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new UsageError(`--endpoint must be an http:// or https:// URL (got "${endpoint}")`);
  }
  const apiKeyEnv = values['api-key-env'];
  if (apiKeyEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(apiKeyEnv))
    throw new UsageError(`--api-key-env must be an environment variable name (got "${apiKeyEnv}")`);
  const traceparent = values.traceparent ?? env.TRACEPARENT;
  return {
    promptFile: required('prompt-file'),
    model: required('model'),
    endpoint,
    api,
    ...(apiKeyEnv ? { apiKeyEnv } : {}),
    maxTurns: positiveInt('max-turns', values['max-turns']) ?? 50,
    ...(values['max-tool-calls'] !== undefined ? { maxToolCalls: positiveInt('max-tool-calls', values['max-tool-calls'])! } : {}),
    ...(values['instructions-file'] ? { instructionsFile: values['instructions-file'] } : {}),
    ...(values['spans-file'] ? { spansFile: values['spans-file'] } : {}),
    ...(traceparent ? { traceparent } : {}),
  };
}
