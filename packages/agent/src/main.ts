/**
 * The LangChain agent runtime's entry point (bundled as dist/agent.mjs): runs as the sandboxed
 * process, `node agent.mjs --prompt-file … --model … --endpoint …`, in the worktree. Events go to
 * stdout as JSON lines, everything else to stderr.
 */
import { processEnv } from '@ameide/config';
import { EXIT_FAILED, runAgent } from './run.js';

// Libraries that log with console.log must not write into the event stream.
console.log = console.error;
console.info = console.error;
console.debug = console.error;

let stop: ((reason: string) => void) | undefined;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    stop?.(`stopped by ${signal}`);
    process.exit(signal === 'SIGTERM' ? 143 : 130);
  });
}

runAgent({
  argv: process.argv.slice(2),
  env: processEnv(),
  cwd: process.cwd(),
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  onStop: (fn) => (stop = fn),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`agent: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = EXIT_FAILED;
  },
);
