import { loadWorkerConfig, runMain } from '@ameide/config';
import { initTelemetry } from '@ameide/telemetry';
import { createCodingWorker } from './worker.js';

runMain(async () => {
  const cfg = loadWorkerConfig();
  const telemetry = initTelemetry('ameide-workflows-runtime');
  const worker = await createCodingWorker(cfg, telemetry);
  process.once('SIGTERM', () => worker.shutdown());
  process.once('SIGINT', () => worker.shutdown());
  const running = worker.run();
  // The line the stack waits for (`make up`): printed once the worker polls and is warm.
  const warm = await Promise.race([worker.warmUp(), running.then(() => undefined)]);
  if (warm !== undefined) console.log(`worker polling task queue "${cfg.temporal.taskQueue}" on ${cfg.temporal.address}; ${warm}`);
  await running;
  await worker.connection.close();
  await telemetry.shutdown();
});
