import { cliColor, cliColumns, cliWorkingDir, loadCliConfig, processEnv, type CliConfig } from '@ameide/config';
import { createBacklogServiceClient, createGovernanceServiceClient, createWorkflowServiceClient } from '@ameide/sdk';
import type { Clients, Ctx } from './context.js';
import type { Terminal } from './output.js';

/** What `cli` was given that the runtime fills in from the environment when it is not. */
export interface RuntimeOptions {
  clients?: Partial<Clients>;
  term?: Partial<Terminal>;
  cwd?: string;
}

/**
 * Fills in what commands need from the environment: the terminal (colour only on one and never with
 * NO_COLOR; its width, or COLUMNS), where paths resolve, and API clients built from the settings when
 * first used (loadCliConfig: AMEIDE_API_URL/AMEIDE_TOKEN, the context, the `make up` stack).
 */
export function prepare(ctx: Ctx, opts: RuntimeOptions): void {
  const env = processEnv();
  const stdout = process.stdout;
  ctx.term = {
    color: opts.term?.color ?? cliColor(stdout.isTTY === true, env),
    columns: opts.term && 'columns' in opts.term ? opts.term.columns : cliColumns(stdout.isTTY ? stdout.columns : undefined, env),
    interactive: opts.term?.interactive ?? stdout.isTTY === true,
  };
  ctx.cwd = opts.cwd ?? cliWorkingDir(env);
  let cfg: CliConfig | undefined;
  const config = () => {
    cfg ??= loadCliConfig(env, { context: ctx.context, cwd: ctx.cwd });
    ctx.api = { url: cfg.apiUrl, tokenSource: cfg.tokenSource };
    return { baseUrl: cfg.apiUrl, token: cfg.token };
  };
  const clients: Partial<Clients> = { ...opts.clients };
  ctx.workflows = () => (clients.workflows ??= createWorkflowServiceClient(config()));
  ctx.governance = () => (clients.governance ??= createGovernanceServiceClient(config()));
  ctx.backlog = () => (clients.backlog ??= createBacklogServiceClient(config()));
}
