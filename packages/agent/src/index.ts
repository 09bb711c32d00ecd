export { parseAgentArgs, UsageError, type AgentOptions, type ModelApi } from './args.js';
export type { AgentEvent } from './events.js';
export { EXIT_BUDGET, EXIT_FAILED, EXIT_OK, EXIT_USAGE, runAgent, type RuntimeIo } from './run.js';
export { globToRegExp } from './tools.js';
export { ToolError, Workspace } from './workspace.js';
