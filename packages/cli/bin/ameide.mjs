#!/usr/bin/env node
// `ameide` inside the repository (what `pnpm ameide …` runs): the bundle (dist/ameide.mjs, from
// `pnpm --filter @ameide/cli build` or `make install-cli`) when it is newer than every source it is
// built from, else the sources through tsx, so that it is never stale.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const here = new URL('..', import.meta.url).pathname;
const bundle = join(here, 'dist', 'ameide.mjs');
const sources = ['cli', 'config', 'contracts', 'sdk', 'attest'].map((p) => join(here, '..', p, 'src'));

/** The newest modification time under `path`. */
function newest(path) {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

const built = existsSync(bundle) ? statSync(bundle).mtimeMs : 0;
if (built && built > Math.max(...sources.map(newest), newest(join(here, 'package.json')), newest(join(here, '..', '..', 'pnpm-lock.yaml')))) {
  await import(bundle);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(join(here, 'src', 'bin.ts'));
}
