import type { BacklogServiceClient, GovernanceServiceClient, WorkflowServiceClient } from '@ameide/sdk';
import type { Output, Terminal } from './output.js';

/** The API clients a command uses; tests pass their own. */
export interface Clients {
  workflows: WorkflowServiceClient;
  governance: GovernanceServiceClient;
  backlog: BacklogServiceClient;
}

/** What every command gets: where to write, the terminal, where relative paths resolve, the API. */
export interface Ctx {
  o: Output;
  term: Terminal;
  /** Where the user typed the command: `-f`, `--dir` and other paths resolve against it. */
  cwd: string;
  /** Aborted when the user presses Ctrl-C. */
  signal?: AbortSignal;
  workflows(): WorkflowServiceClient;
  governance(): GovernanceServiceClient;
  backlog(): BacklogServiceClient;
  /** The exit code the command's action set. */
  exitCode: number;
}
