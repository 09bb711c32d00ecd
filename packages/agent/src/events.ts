/**
 * The runtime's stdout: one JSON object per line for each thing the agent did, in the shape of the
 * worker's AgentEvent (services/workflows-runtime/src/agents/types.ts). Nothing else goes to stdout.
 */

export type AgentEvent =
  | { type: 'turn' }
  | { type: 'message'; role: 'assistant' | 'user'; text: string }
  | { type: 'tool_call'; name: string; input: string; id?: string }
  | { type: 'tool_result'; output: string; id?: string; isError?: boolean }
  | { type: 'usage'; model?: string; inputTokens: number; outputTokens: number }
  | { type: 'final'; text: string }
  | { type: 'error'; message: string };

export type EventSink = (event: AgentEvent) => void;

/** Writes each event as one line to `write` (stdout in the runtime). */
export function jsonLines(write: (line: string) => void): EventSink {
  return (event) => write(JSON.stringify(event) + '\n');
}
