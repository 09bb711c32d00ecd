import type { governanceV1 } from '@ameide/contracts';
import type { Client } from '@connectrpc/connect';
import { diskTemplate, diskTemplateDir, runDisks } from './lifecycle.js';

/** What the warm-up needs from the worker. */
export interface WarmUpDeps {
  /** The service, with the worker's credential. */
  governance: Pick<Client<typeof governanceV1.GovernanceService>, 'getSigningKeys'>;
  workspaceDir: string;
  runDiskMb: number;
}

/** What the warm-up did, one phrase a part (the worker's log line). */
export interface WarmUpResult {
  service: string;
  disk: string;
}

/**
 * The worker side of a worker's warm-up (workflow/warm-up.ts runs it as a local activity, so on the
 * worker that starts): one call to the service, the first of the process (a connection, both ends'
 * code paths), and the disk image runs copy, made once per size. Neither fails the warm-up: a
 * service that is away or a disk that cannot be made are the first run's to report.
 */
export function createWarmUpActivities(deps: WarmUpDeps) {
  return {
    async warmUpWorker(): Promise<WarmUpResult> {
      const [service, disk] = await Promise.all([
        deps.governance.getSigningKeys({}).then(
          () => 'the service answered',
          (err: Error) => `the service did not answer (${err.message})`,
        ),
        runDisks(deps.runDiskMb)
          ? diskTemplate(diskTemplateDir(deps.workspaceDir), deps.runDiskMb).then(
              () => 'disk image ready',
              (err: Error) => `no disk image (${err.message.split('\n')[0]})`,
            )
          : Promise.resolve('no run disks'),
      ]);
      return { service, disk };
    },
  };
}

export type WarmUpActivities = ReturnType<typeof createWarmUpActivities>;
