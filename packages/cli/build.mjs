// Bundles the CLI and everything it imports (the workspace packages, the protobuf code, commander, the
// AWS SDK) into one ES module that runs with Node alone: dist/ameide.mjs, or the path given as the first
// argument. `pnpm --filter @ameide/cli build`; `make install-cli` puts it on PATH.
import { chmodSync } from 'node:fs';
import { resolve } from 'node:path';
import { build } from 'esbuild';

const outfile = resolve(process.argv[2] ?? new URL('./dist/ameide.mjs', import.meta.url).pathname);
await build({
  entryPoints: [new URL('./src/bin.ts', import.meta.url).pathname],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  banner: {
    // CommonJS dependencies bundled into an ES module still require() Node's built-in modules.
    js: "#!/usr/bin/env node\nimport { createRequire as __ameideRequire } from 'node:module';\nconst require = __ameideRequire(import.meta.url);",
  },
});
chmodSync(outfile, 0o755);
