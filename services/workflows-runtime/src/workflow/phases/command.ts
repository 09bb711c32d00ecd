import type { CommandPhase } from '@ameide/temporal';
import { workspaceOf, type PhaseUnit, type RunContext } from '../context.js';
import { failureHint } from '../hints.js';

const COMMAND_OF: Record<CommandPhase, (ctx: RunContext) => string> = {
  install: (ctx) => ctx.input.repo.installCommand,
  agent: (ctx) => {
    const a = ctx.input.repo.agent;
    return a ? `${a.kind} agent (${a.model})` : ctx.input.repo.agentCommand;
  },
  test: (ctx) => ctx.input.repo.testCommand,
};

/** A phase that runs one of the definition's shell commands in the run's sandbox (install, agent, test). */
export function commandPhase(phase: Extract<CommandPhase, 'install' | 'agent' | 'test'>): PhaseUnit {
  const budgets = (ctx: RunContext) => ctx.input.repo.guardrails.budgets;
  return {
    name: phase,
    before(ctx) {
      if (!COMMAND_OF[phase](ctx).trim()) return { state: 'skipped', message: `no ${phase} command in the definition` };
      if (ctx.runDeadline - Date.now() <= 0) {
        ctx.summary.budgetExceeded = 'run_timeout';
        return { state: 'failed', message: `the run's ${budgets(ctx).runTimeoutSeconds}s budget ran out before the ${phase} command could start` };
      }
      if (++ctx.commandsRun > budgets(ctx).maxCommands) {
        ctx.summary.budgetExceeded = 'max_commands';
        return { state: 'failed', message: `the run's budget of ${budgets(ctx).maxCommands} commands is used up` };
      }
      return undefined;
    },
    async run(ctx) {
      const ws = workspaceOf(ctx);
      const phaseMs = ctx.input.repo.phaseTimeoutSeconds * 1000;
      // A command gets its phase budget, or what is left of the run's, whichever is less.
      const runLeftMs = ctx.runDeadline - Date.now();
      const timeoutMs = Math.max(1000, Math.min(phaseMs, runLeftMs));
      const r = await ctx.activities.commands.runCommandPhase({
        run: ctx.input,
        phase,
        command: COMMAND_OF[phase](ctx),
        worktreePath: ws.worktreePath,
        promptFile: ws.promptFile,
        baseCommit: ws.baseCommit,
        timeoutMs,
        // A retried attempt gets what is left of the run's budget then, not the first attempt's time.
        runDeadline: ctx.runDeadline,
      });
      if (phase === 'test') {
        ctx.summary.testExitCode = r.exitCode;
        if (r.testReport) ctx.summary.testReport = r.testReport;
      }
      if (r.agent) ctx.summary.agent = r.agent;
      if (r.egress) ctx.summary.egress = [...(ctx.summary.egress ?? []).filter((e) => e.phase !== phase), ...r.egress];
      let message: string | undefined;
      if (r.agent?.stopped) {
        message = `${phase} phase failed: ${r.agent.stopped}`;
      } else if (r.timedOut && (r.timeoutMs ?? timeoutMs) < phaseMs) {
        ctx.summary.budgetExceeded = 'run_timeout';
        message = `${phase} command stopped: the run's ${budgets(ctx).runTimeoutSeconds}s budget ran out`;
      } else if (r.timedOut) {
        ctx.summary.budgetExceeded = 'phase_timeout';
        message = `${phase} command exceeded the ${ctx.input.repo.phaseTimeoutSeconds}s phase budget`;
      } else if (r.exitCode !== 0) {
        // A command the sandbox lacks, or the network in an offline phase: say what to change in the definition.
        const modelOnly = phase === 'agent' && !ctx.input.repo.guardrails.network.agent ? ctx.input.repo.modelEndpoint : undefined;
        const hint = failureHint({ phase, exitCode: r.exitCode, outputTail: r.outputTail, guardrails: ctx.input.repo.guardrails, egress: r.egress, modelOnly });
        message = `${phase} command failed with exit code ${r.exitCode}${hint ? `: ${hint}` : ''}`;
      }
      // The status update carries the output's last lines; the whole of it is in the phase's transcript.
      if (message && r.transcriptUri) message += ` (full output: ${r.transcriptUri})`;
      return { state: message ? 'failed' : 'succeeded', exitCode: r.exitCode, durationMs: r.durationMs, outputTail: r.outputTail, message };
    },
  };
}
