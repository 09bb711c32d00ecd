import { cli } from './main.js';

/**
 * The `ameide` binary: runs the command, prints an error as one line (`error: …`, no stack trace for
 * expected errors) and exits with the command's code. Ctrl-C stops a watching command (it says how to
 * follow the run again); a second Ctrl-C, or one during any other command, exits at once (130).
 */
async function main(): Promise<void> {
  const interrupt = new AbortController();
  process.on('SIGINT', () => {
    if (interrupt.signal.aborted) process.exit(130);
    interrupt.abort();
    // Watching commands return on their own; give anything else a moment, then go.
    setTimeout(() => process.exit(130), 1000).unref();
  });
  try {
    process.exitCode = await cli(process.argv.slice(2), undefined, { signal: interrupt.signal });
  } catch (err) {
    const e = err as Error & { expected?: boolean; exitCode?: number };
    if (e instanceof Error && (e.expected || e.name === 'ConfigError')) console.error(`error: ${e.message}`);
    else console.error(err);
    process.exitCode = typeof e.exitCode === 'number' ? e.exitCode : 1;
  }
}

void main();
