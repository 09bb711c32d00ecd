import { loadServiceConfig, runMain } from '@ameide/config';
import { initTelemetry } from '@ameide/telemetry';
import { startWorkflowService } from './app.js';

runMain(async () => {
  const cfg = loadServiceConfig();
  const telemetry = initTelemetry('ameide-workflows');
  const app = await startWorkflowService(cfg);
  if (app.preview)
    console.log(`preview router listening on ${app.preview.url} (http://<run-id8 or work item>.<tenant>.${cfg.preview.domain}:${cfg.preview.urlPort}/)`);
  console.log(`workflow service listening on ${app.server.url} (Connect, gRPC, gRPC-Web)`);
  const stop = async () => {
    await app.stop();
    await telemetry.shutdown();
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
});
