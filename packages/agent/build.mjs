// Bundles the LangChain agent runtime (src/main.ts) and everything it imports into one ES module that
// runs with Node alone: dist/agent.mjs, or the path given as the first argument. The worker runs it as
// the sandboxed agent process (services/workflows-runtime/src/agents/langchain.ts). `make deps` builds it.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { build } from 'esbuild';

const outfile = resolve(process.argv[2] ?? new URL('./dist/agent.mjs', import.meta.url).pathname);
const result = await build({
  entryPoints: [new URL('./src/main.ts', import.meta.url).pathname],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
  banner: {
    // CommonJS dependencies bundled into an ES module still require() Node's built-in modules.
    js: "import { createRequire as __ameideRequire } from 'node:module';\nconst require = __ameideRequire(import.meta.url);",
  },
});
// Replaced in one step, so that a runtime starting meanwhile (a test, a worker) reads the old or the new file, never half of one.
const tmp = `${outfile}.${process.pid}.tmp`;
mkdirSync(dirname(outfile), { recursive: true });
writeFileSync(tmp, result.outputFiles[0].contents);
renameSync(tmp, outfile);
