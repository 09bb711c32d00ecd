import { DEFAULT_AGENT_MAX_TURNS, type AgentRunResult, type AgentSettings } from './types.js';

/** The coding agents the agent phase can run besides a shell command (AgentSpec.kind). */
export const AGENT_KINDS = ['codex', 'claude-code', 'langchain'] as const;
export type AgentKindName = (typeof AGENT_KINDS)[number];

/** The wire formats each agent kind speaks; the first is its default. */
export const AGENT_APIS: Record<AgentKindName, ReadonlyArray<AgentSettings['api']>> = {
  codex: ['responses'],
  'claude-code': ['messages'],
  langchain: ['chat', 'responses', 'messages'],
};

/** `spec.agent` as a definition states it (the API's JSON form fits). */
export interface AgentInput {
  kind?: string;
  model?: string;
  endpoint?: string;
  api?: string;
  apiKeySecret?: string;
  maxTurns?: number;
  instructions?: string;
}

export function isAgentKind(kind: string | undefined): kind is AgentKindName {
  return (AGENT_KINDS as readonly string[]).includes(kind ?? '');
}

/** The agent a run's agent phase runs, defaults filled in; undefined for `command` (or none). */
export function resolveAgent(a: AgentInput | undefined): AgentSettings | undefined {
  if (!a || !isAgentKind(a.kind)) return undefined;
  const apis = AGENT_APIS[a.kind];
  const settings: AgentSettings = {
    kind: a.kind,
    model: a.model ?? '',
    endpoint: a.endpoint ?? '',
    api: apis.find((x) => x === a.api) ?? apis[0]!,
    maxTurns: a.maxTurns || DEFAULT_AGENT_MAX_TURNS,
  };
  if (a.apiKeySecret) settings.apiKeyEnv = a.apiKeySecret;
  if (a.instructions) settings.instructions = a.instructions;
  return settings;
}

/** Host and port of a model endpoint URL (http or https, default ports filled in); undefined when it is not one. */
export function modelEndpointOf(endpoint: string | undefined): { host: string; port: number } | undefined {
  const m = /^(https?):\/\/([A-Za-z0-9.-]+)(?::(\d{1,5}))?(?:[/?#]|$)/.exec(endpoint ?? '');
  if (!m) return undefined;
  const port = m[3] ? Number(m[3]) : m[1] === 'https' ? 443 : 80;
  if (port < 1 || port > 65535) return undefined;
  return { host: m[2]!.toLowerCase().replace(/\.$/, ''), port };
}

/**
 * Whether the agent phase runs in network mode `model` (only the model endpoint): asked for with
 * `network.agent_mode: model`, and the default of the agent kinds when `network.agent` is unset.
 */
export function modelOnlyNetwork(a: AgentInput | undefined, network: { agent?: boolean; agentMode?: string } | undefined): boolean {
  if (network?.agentMode === 'model') return true;
  return isAgentKind(a?.kind) && network?.agent === undefined;
}

/** What an agent did in the API's JSON form (64-bit numbers as strings). */
export function agentRunJson(a: AgentRunResult) {
  const n = (x: number) => String(Math.max(0, Math.round(x)));
  return {
    ...a,
    inputTokens: n(a.inputTokens),
    outputTokens: n(a.outputTokens),
    calls: a.calls.map((c) => ({ ...c, inputTokens: n(c.inputTokens), outputTokens: n(c.outputTokens) })),
  };
}
