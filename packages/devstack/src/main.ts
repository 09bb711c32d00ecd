import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadStackConfig, runMain, stackDir } from '@ameide/config';
import { runDemo } from './demo.js';
import { startStack, stopOnSignals, type StackInfo } from './stack.js';

const STACK = 'stack';

runMain(async () => {
  const cfg = loadStackConfig();
  const cmd = process.argv[2];
  const infoFile = join(stackDir(cfg, STACK), 'stack.json');
  const readInfo = () => (existsSync(infoFile) ? (JSON.parse(readFileSync(infoFile, 'utf8')) as StackInfo) : undefined);
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  switch (cmd) {
    case 'demo':
      process.exitCode = await runDemo(cfg);
      return;
    case 'run': {
      // Foreground supervisor for `make up`; stops everything on SIGTERM/SIGINT.
      const stack = await startStack(cfg, { name: STACK, ephemeral: false });
      stopOnSignals(stack.stop);
      console.log('stack ready');
      return new Promise<void>(() => undefined);
    }
    case 'up': {
      const existing = readInfo();
      if (existing && alive(existing.pid)) {
        printInfo(existing, 'already running');
        return;
      }
      const logs = join(stackDir(cfg, STACK), 'logs');
      mkdirSync(logs, { recursive: true });
      const fd = openSync(join(logs, 'supervisor.log'), 'a');
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
      const why = readFileSync(join(logs, 'supervisor.log'), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('error: '))
        .at(-1);
      throw Object.assign(new Error(`the stack did not start${why ? `: ${why.slice(7)}` : ''} (log: ${join(logs, 'supervisor.log')})`), { expected: true });
    }
    case 'down': {
      const info = readInfo();
      if (!info || !alive(info.pid)) {
        console.log('no stack is running');
        return;
      }
      process.kill(info.pid, 'SIGTERM');
      while (alive(info.pid)) await new Promise((r) => setTimeout(r, 200));
      console.log('stack stopped');
      return;
    }
    default:
      throw Object.assign(new Error('usage: stack up|down|run|demo'), { expected: true });
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
  logs                           ${info.logs}
try:  pnpm ameide definitions list        (uses this stack's URL and token)
stop: make down`);
}
