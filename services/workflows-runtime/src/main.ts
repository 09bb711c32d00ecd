import { loadWorkerConfig, runMain } from '@ameide/config';
import { initTelemetry } from '@ameide/telemetry';
import { createCodingWorker } from './worker.js';

runMain(async () => {
  const cfg = loadWorkerConfig();
  const telemetry = initTelemetry('ameide-workflows-runtime');
  const worker = await createCodingWorker(cfg, telemetry);
  console.log(`worker polling task queue "${cfg.temporal.taskQueue}" on ${cfg.temporal.address}`);
  process.once('SIGTERM', () => worker.shutdown());
  process.once('SIGINT', () => worker.shutdown());
  await worker.run();
  await worker.connection.close();
  await telemetry.shutdown();
});
