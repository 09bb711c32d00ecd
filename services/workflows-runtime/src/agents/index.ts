import { claudeCodeAdapter } from './claude-code.js';
import { codexAdapter } from './codex.js';
import { langchainAdapter } from './langchain.js';
import type { AgentAdapter, AgentKind } from './types.js';

export * from './types.js';
export { AGENT_SPANS_FILE_NAME, exportAgentSpans } from './langchain.js';

/** The adapter of each agent kind. */
export const ADAPTERS: Record<AgentKind, AgentAdapter> = {
  codex: codexAdapter,
  'claude-code': claudeCodeAdapter,
  langchain: langchainAdapter,
};
