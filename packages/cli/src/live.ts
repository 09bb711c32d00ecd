import { Phase, StatusUpdateKind, type StatusUpdate } from '@ameide/contracts';
import type { WorkflowServiceClient } from '@ameide/sdk';
import { phaseName } from './format.js';
import { latestOutputLines } from './logs.js';
import { duration, paint, type Output, type Terminal } from './output.js';

/** The phases that run a command and so have output to show. */
const COMMAND_PHASES = new Set([Phase.INSTALL, Phase.AGENT, Phase.TEST]);

/** How often the running command's output is fetched again. */
const POLL_MS = 2000;

/** How many of its latest lines are shown. */
const LINES = 5;

/** Hooks `watchRun` calls around each status update it prints. */
export interface WatchHooks {
  /** Before an update is printed (the live block is erased). */
  before(): void;
  /** After it was printed. */
  after(update: StatusUpdate): void;
  /** The watch ended (or failed). */
  stop(): void;
}

/**
 * What `runs watch` shows on a terminal below the status updates while a command phase runs: the
 * elapsed time and the command's latest output lines, fetched every two seconds and redrawn in place
 * (on stdout, which must be a terminal; `runs watch` uses it only then). A failure to fetch the output
 * only leaves the lines out.
 */
export class LiveOutput implements WatchHooks {
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private phase: Phase | undefined;
  private since = 0;
  private lines: string[] = [];
  private generation = 0;

  constructor(
    private readonly api: WorkflowServiceClient,
    private readonly runId: string,
    private readonly o: Output,
    private readonly term: Terminal,
  ) {}

  before(): void {
    this.erase();
  }

  after(update: StatusUpdate): void {
    if (update.kind === StatusUpdateKind.PHASE_STARTED && COMMAND_PHASES.has(update.phase)) {
      this.phase = update.phase;
      this.since = Date.now();
      this.lines = [];
      this.generation++;
      this.schedule(0);
    } else if ((update.kind === StatusUpdateKind.PHASE_FINISHED && update.phase === this.phase) || update.kind === StatusUpdateKind.RUN_FINISHED) {
      this.clear();
    }
    this.draw();
  }

  stop(): void {
    this.clear();
    this.erase();
  }

  private clear(): void {
    this.phase = undefined;
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    const generation = this.generation;
    this.timer = setTimeout(() => void this.poll(generation), ms);
    this.timer.unref();
  }

  private async poll(generation: number): Promise<void> {
    const phase = this.phase;
    if (phase === undefined) return;
    const lines = await latestOutputLines(this.api, this.runId, phaseName(phase), LINES).catch(() => undefined);
    if (generation !== this.generation) return;
    if (lines) this.lines = lines;
    this.erase();
    this.draw();
    this.schedule(POLL_MS);
  }

  /** The live block: the phase and how long it has been running, then its latest lines, each cut to the terminal's width. */
  private draw(): void {
    if (this.phase === undefined || this.drawn) return;
    const width = Math.max(20, (this.term.columns ?? 80) - 1);
    const fit = (s: string) => {
      const plain = s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
      return plain.length > width ? `${plain.slice(0, width - 1)}…` : plain;
    };
    const block = [
      fit(`      ${phaseName(this.phase)} running for ${duration(Date.now() - this.since)}…`),
      ...this.lines.map((l) => paint(this.term, 'dim', fit(`      │ ${l}`))),
    ];
    this.o.out(block.join('\n'));
    this.drawn = block.length;
  }

  /** Removes the live block: the cursor goes up over it and everything below is cleared. */
  private erase(): void {
    if (!this.drawn) return;
    process.stdout.write(`\x1b[${this.drawn}F\x1b[J`);
    this.drawn = 0;
  }
}
