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
  /** Colour, width, whether stdout is a terminal (set by `ready`). */
  term: Terminal;
  /** Where the user typed the command: `-f`, `--dir` and other paths resolve against it (set by `ready`). */
  cwd: string;
  /** Aborted when the user presses Ctrl-C. */
  signal?: AbortSignal;
  /** The global --context flag. */
  context?: string;
  /** The API the clients talk to and where its token came from, once the settings were read (for error hints). */
  api?: { url: string; tokenSource: string };
  workflows(): WorkflowServiceClient;
  governance(): GovernanceServiceClient;
  backlog(): BacklogServiceClient;
  /**
   * Reads the environment (terminal, working directory) and makes the API clients available; called
   * before a command runs, not for help, so that help and --version load none of it.
   */
  ready(): Promise<void>;
  /** The exit code the command's action set. */
  exitCode: number;
}
