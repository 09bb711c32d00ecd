import type { PhaseName } from './types.js';

/** The command phases guardrails distinguish. */
export type CommandPhase = Extract<PhaseName, 'install' | 'agent' | 'test'>;

/** Guardrails a run executes under, with every default filled in (they travel in the workflow input). */
export interface GuardrailSettings {
  sandbox: 'bubblewrap' | 'none';
  allowedPaths: string[];
  deniedPaths: string[];
  network: Record<CommandPhase, boolean>;
  budgets: {
    maxCommands: number;
    runTimeoutSeconds: number;
    maxOutputBytes: number;
    maxProcesses: number;
    maxFileBytes: number;
  };
  packageCaches: Array<'npm' | 'pnpm' | 'pip' | 'go'>;
  readOnlyPaths: string[];
  /** Hosts online phases may reach through the worker's egress proxy; empty = the operator's default list. */
  egressHosts: string[];
}

/** The phases a secret can be given to: the command phases, and the preview's commands. */
export type SecretPhase = CommandPhase | 'preview';

/** A secret by reference: the value stays in the worker's environment, never in history. */
export interface SecretReference {
  name: string;
  phases: SecretPhase[];
  fromEnv: string;
}

export const PACKAGE_CACHES = ['npm', 'pnpm', 'pip', 'go'] as const;

export const DEFAULT_GUARDRAILS: GuardrailSettings = {
  sandbox: 'bubblewrap',
  allowedPaths: ['**'],
  deniedPaths: ['.git/**', '.github/workflows/**'],
  network: { install: true, agent: false, test: false },
  budgets: {
    maxCommands: 20,
    runTimeoutSeconds: 3600,
    maxOutputBytes: 10 * 1024 * 1024,
    maxProcesses: 256,
    maxFileBytes: 1024 * 1024 * 1024,
  },
  packageCaches: ['npm', 'pnpm', 'pip', 'go'],
  readOnlyPaths: [],
  egressHosts: [],
};

/** Guardrails as a definition states them: anything may be missing (the API's JSON form fits). */
export interface GuardrailsInput {
  sandbox?: string;
  allowedPaths?: string[];
  deniedPaths?: string[];
  network?: Partial<Record<CommandPhase, boolean>> & { agentMode?: string };
  budgets?: Partial<Record<keyof GuardrailSettings['budgets'], number | string>>;
  packageCaches?: string[];
  readOnlyPaths?: string[];
  egressHosts?: string[];
}

/** Fills defaults for whatever a definition leaves unset (zero, empty list, unset flag). */
export function resolveGuardrails(g: GuardrailsInput | undefined): GuardrailSettings {
  const d = DEFAULT_GUARDRAILS;
  const list = <T>(v: T[] | undefined, dflt: T[]) => (v && v.length ? v : dflt);
  // uint64 fields arrive as strings in the API's JSON form.
  const num = (v: number | string | undefined, dflt: number) => (v && Number(v) > 0 ? Number(v) : dflt);
  const b = g?.budgets ?? {};
  return {
    sandbox: g?.sandbox === 'none' ? 'none' : 'bubblewrap',
    allowedPaths: list(g?.allowedPaths, d.allowedPaths),
    deniedPaths: list(g?.deniedPaths, d.deniedPaths),
    network: {
      install: g?.network?.install ?? d.network.install,
      agent: g?.network?.agent ?? d.network.agent,
      test: g?.network?.test ?? d.network.test,
    },
    budgets: {
      maxCommands: num(b.maxCommands, d.budgets.maxCommands),
      runTimeoutSeconds: num(b.runTimeoutSeconds, d.budgets.runTimeoutSeconds),
      maxOutputBytes: num(b.maxOutputBytes, d.budgets.maxOutputBytes),
      maxProcesses: num(b.maxProcesses, d.budgets.maxProcesses),
      maxFileBytes: num(b.maxFileBytes, d.budgets.maxFileBytes),
    },
    packageCaches: list(g?.packageCaches as GuardrailSettings['packageCaches'] | undefined, d.packageCaches),
    readOnlyPaths: g?.readOnlyPaths ?? [],
    egressHosts: (g?.egressHosts ?? []).map((h) => h.toLowerCase()),
  };
}
