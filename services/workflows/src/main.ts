import { loadServiceConfig, runMain } from '@ameide/config';
import { initTelemetry } from '@ameide/telemetry';
import { startWorkflowService } from './app.js';

runMain(async () => {
  const cfg = loadServiceConfig();
  const telemetry = initTelemetry('ameide-workflows');
  const app = await startWorkflowService(cfg);
  console.log(`workflow service listening on ${app.server.url} (Connect, gRPC, gRPC-Web)`);
  const stop = async () => {
    await app.stop();
    await telemetry.shutdown();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
});
