// Bundles the CLI and everything it imports (the workspace packages, the protobuf code, commander, the
// AWS SDK) into one file that runs with Node alone: dist/ameide.mjs, or the path given as the first
// argument. `pnpm --filter @ameide/cli build`; `make install-cli` puts it on PATH.
//
// The file starts fast: esbuild splits the code into modules (the command tree that help, --version and
// completion need; each command group; what they share: the API clients, the protobuf code, zod, the AWS
// SDK) and each module is kept as text in a comment at the end of the file, compiled only when a command
// first requires it. Node parses a comment at almost no cost, where parsing all the code took most of the
// start-up. A small loader at the top reads the modules from its own file and runs them, each as a
// CommonJS-style function (esbuild turns each split module's imports and exports into require/exports),
// with V8's code cache for the modules a command loads when it runs (made here, at build time).
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, resolve } from 'node:path';
import { Script } from 'node:vm';
import { build, transform } from 'esbuild';

const outfile = resolve(process.argv[2] ?? new URL('./dist/ameide.mjs', import.meta.url).pathname);
const ENTRY = 'ameide.js';

const split = await build({
  absWorkingDir: new URL('.', import.meta.url).pathname, // module names (hashes) that do not depend on where the build runs
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
  metafile: true,
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
    return { name: basename(f.path), source: out.code, code: out.code.replaceAll('*/', '*\x01/') };
  }),
);
if (!modules.some((m) => m.name === ENTRY)) throw new Error(`no ${ENTRY} among ${modules.map((m) => m.name).join(', ')}`);

/** How the loader compiles a module (the same text here and there, or V8 refuses the code cache). */
const wrap = (source) => '(function (exports, require, module) {"use strict";' + source + '\n})';

/** Each module's imports: static (loaded with it) and dynamic (loaded when a command runs). */
const imports = new Map(
  Object.entries(split.metafile.outputs).map(([path, out]) => [
    basename(path),
    {
      static: out.imports.filter((i) => i.kind === 'import-statement' && !i.external).map((i) => basename(i.path)),
      dynamic: out.imports.filter((i) => i.kind === 'dynamic-import' && !i.external).map((i) => basename(i.path)),
    },
  ]),
);
const closure = (names) => {
  const seen = new Set();
  const visit = (n) => !seen.has(n) && (seen.add(n), imports.get(n).static.forEach(visit));
  names.forEach(visit);
  return seen;
};
const startup = closure([ENTRY]);
/**
 * The modules that get a code cache: those a command loads when it runs (the command modules and what
 * they import), not those that help and --version need (compiling the little of them that runs costs
 * less than reading a cache of all of them) nor those loaded later on demand (the AWS SDK: big, and
 * only for fetching an artifact).
 */
const cached = new Set([...closure(imports.get(ENTRY).dynamic)].filter((n) => !startup.has(n)));

/**
 * V8's code cache of those modules, made here by compiling and running each as the loader does (so that
 * it holds the functions the module runs when it loads, not only its top level): Node then deserializes
 * instead of compiling. V8 refuses a cache made by another version of Node (or with other V8 flags), and
 * the loader then compiles the module as if it had none.
 */
function codeCaches() {
  const byName = new Map(modules.map((m) => [m.name, m]));
  const nodeRequire = createRequire(outfile);
  const loaded = new Map();
  const caches = new Map();
  const load = (name) => {
    if (loaded.has(name)) return loaded.get(name).exports;
    const module = { exports: {} };
    loaded.set(name, module);
    const script = new Script(wrap(byName.get(name).source), { filename: `ameide/${name}` });
    script.runInThisContext().call(module.exports, module.exports, (id) => (id.startsWith('./') ? load(id.slice(2)) : nodeRequire(id)), module);
    if (cached.has(name)) caches.set(name, script.createCachedData().toString('base64'));
    return module.exports;
  };
  for (const name of cached) load(name);
  return caches;
}
const caches = codeCaches();

// The file ends with one comment: the modules, then their code caches (base64, which has no "*/").
// index: name → [offset, length, cache offset, cache length], offsets from the start of the comment.
let payload = '';
const index = {};
for (const m of modules) {
  index[m.name] = [payload.length, m.code.length];
  payload += m.code;
}
for (const m of modules) {
  const cache = caches.get(m.name) ?? '';
  index[m.name].push(payload.length, cache.length);
  payload += cache;
}
const tail = '*/\n';

// The loader. It is CommonJS and an ES module at once (no import or export): Node runs the installed,
// extension-less file as CommonJS, without first trying it as an ES module, and dist/ameide.mjs (which
// `pnpm ameide` imports) as an ES module. Its own path is __filename in the one (where `this` is the
// module's exports) and found from the stack in the other (where `this` is undefined). It reads a
// module's text, and its code cache, from the comment at the end of the file when the module is first
// required.
const loader = `#!/usr/bin/env node
'use strict';
const { fstatSync, openSync, readSync } = process.getBuiltinModule('node:fs');
const { createRequire } = process.getBuiltinModule('node:module');
const { fileURLToPath } = process.getBuiltinModule('node:url');
const { Script } = process.getBuiltinModule('node:vm');
const self = this === undefined ? fileURLToPath(callerFile()) : __filename;
function callerFile() {
  const { prepareStackTrace, stackTraceLimit } = Error;
  Error.prepareStackTrace = (_, stack) => stack;
  Error.stackTraceLimit = 1;
  try {
    return new Error().stack[0].getFileName();
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
}
const nodeRequire = createRequire(self);
const index = ${JSON.stringify(index)};
const wrap = ${wrap.toString()};
let fd, start;
function read(at, length) {
  if (fd === undefined) {
    fd = openSync(self, 'r');
    start = fstatSync(fd).size - ${payload.length + tail.length};
  }
  const bytes = Buffer.allocUnsafe(length);
  for (let n = 0; n < length; ) {
    const got = readSync(fd, bytes, n, length - n, start + at + n);
    if (got === 0) throw new Error(self + ': truncated');
    n += got;
  }
  return bytes.toString('latin1');
}
const loaded = new Map();
function load(name) {
  let module = loaded.get(name);
  if (module) return module.exports;
  const [at, length, cacheAt, cacheLength] = index[name];
  const code = read(at, length).replaceAll('*\\x01/', '*/');
  const cachedData = cacheLength ? Buffer.from(read(cacheAt, cacheLength), 'base64') : undefined;
  module = { exports: {} };
  loaded.set(name, module);
  const run = new Script(wrap(code), { filename: 'ameide/' + name, cachedData }).runInThisContext();
  run.call(module.exports, module.exports, (id) => (id.startsWith('./') ? load(id.slice(2)) : nodeRequire(id)), module);
  return module.exports;
}
load(${JSON.stringify(ENTRY)});
/*`;

mkdirSync(dirname(outfile), { recursive: true });
writeFileSync(outfile, loader + payload + tail);
chmodSync(outfile, 0o755);
