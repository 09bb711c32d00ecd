// Bundles the CLI and everything it imports (the workspace packages, the protobuf code, commander, the
// AWS SDK) into one file that runs with Node alone: dist/ameide.mjs, or the path given as the first
// argument. `pnpm --filter @ameide/cli build`; `make install-cli` puts it on PATH.
//
// The file starts fast: esbuild splits the code into modules (the command tree that help, --version and
// completion need; each command group; what they share: the API clients, the protobuf code, zod, the AWS
// SDK) and each module is kept as text in a comment at the end of the file, compiled only when a command
// first requires it. Node parses a comment at almost no cost, where parsing all the code took most of the
// start-up. A small loader at the top reads the modules from its own file and runs them, each as a
// CommonJS-style function (esbuild turns each split module's imports and exports into require/exports).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { build, transform } from 'esbuild';

const outfile = resolve(process.argv[2] ?? new URL('./dist/ameide.mjs', import.meta.url).pathname);
const ENTRY = 'ameide.js';

const split = await build({
  entryPoints: { ameide: new URL('./src/bin.ts', import.meta.url).pathname },
  outdir: '/', // nothing is written: the modules are kept in memory
  write: false,
  bundle: true,
  splitting: true,
  chunkNames: '[name]-[hash]',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});

/** Each module as the body of a function of (exports, require, module): `import()` of another module becomes a require of it. */
const modules = await Promise.all(
  split.outputFiles.map(async (f) => {
    const out = await transform(f.text, {
      format: 'cjs',
      target: 'node20',
      minify: true,
      legalComments: 'none',
      supported: { 'dynamic-import': false },
      logLevel: 'silent',
    });
    if (out.warnings.length) throw new Error(`${basename(f.path)}: ${out.warnings.map((w) => w.text).join('; ')}`);
    // The modules go into a comment: only ASCII (esbuild escapes the rest), and no "*/" (written "*\x01/").
    if (/[^\x02-\x7e\t\n\r]/.test(out.code)) throw new Error(`${basename(f.path)}: a character that is not printable ASCII`);
    return { name: basename(f.path), code: out.code.replaceAll('*/', '*\x01/') };
  }),
);
if (!modules.some((m) => m.name === ENTRY)) throw new Error(`no ${ENTRY} among ${modules.map((m) => m.name).join(', ')}`);

let payload = '';
const index = {};
for (const m of modules) {
  index[m.name] = [payload.length, m.code.length];
  payload += m.code;
}
const tail = '*/\n';

// The loader: an ES module (dist/ameide.mjs is imported as one; Node runs the extensionless installed
// file as one too, having found its `import`). A module's text is found from the end of the file.
const loader = `#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Script } from 'node:vm';
const nodeRequire = createRequire(import.meta.url);
const index = ${JSON.stringify(index)};
const loaded = new Map();
let text;
function load(name) {
  let module = loaded.get(name);
  if (module) return module.exports;
  text ??= readFileSync(new URL(import.meta.url), 'latin1');
  const [at, length] = index[name];
  const start = text.length - ${payload.length + tail.length} + at;
  const code = text.slice(start, start + length).replaceAll('*\\x01/', '*/');
  module = { exports: {} };
  loaded.set(name, module);
  const run = new Script('(function (exports, require, module) {"use strict";' + code + '\\n})', { filename: 'ameide/' + name }).runInThisContext();
  run.call(module.exports, module.exports, (id) => (id.startsWith('./') ? load(id.slice(2)) : nodeRequire(id)), module);
  return module.exports;
}
load(${JSON.stringify(ENTRY)});
/*`;

mkdirSync(dirname(outfile), { recursive: true });
writeFileSync(outfile, loader + payload + tail);
chmodSync(outfile, 0o755);
