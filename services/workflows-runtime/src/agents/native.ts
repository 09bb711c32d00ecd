import { accessSync, constants, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { AgentUnavailableError } from './types.js';

/**
 * What the CLIs shipped as native binaries in npm platform packages (Codex CLI, Claude Code) share:
 * finding the binary next to the main package, and a shell wrapper that hands them the prompt file.
 */

/**
 * A /bin/sh script: `$1` the prompt file, `$2` the text appended to it, the rest the command, which
 * gets both on stdin. The here-document's expansions are not expanded again, so the prompt's text
 * reaches the agent byte for byte (but for its trailing newlines).
 */
export function withPromptOnStdin(agent: string): string {
  return `p=$1 i=$2; shift 2
[ -r "$p" ] || { echo "${agent}: cannot read the prompt file $p" >&2; exit 2; }
exec "$@" <<PROMPT_END
$(cat -- "$p")$i
PROMPT_END`;
}

/** The real directory of `platformPackage`, the optional dependency of `mainPackage` that carries its binary. */
export function platformPackageDir(mainPackage: string, platformPackage: string, messages: { notInstalled: string; noBinary: string }): string {
  let mainDir: string;
  try {
    mainDir = dirname(realpathSync(createRequire(import.meta.url).resolve(`${mainPackage}/package.json`)));
  } catch {
    throw new AgentUnavailableError(messages.notInstalled);
  }
  try {
    return dirname(realpathSync(createRequire(join(mainDir, 'package.json')).resolve(`${platformPackage}/package.json`)));
  } catch {
    throw new AgentUnavailableError(messages.noBinary);
  }
}

/** The version in a package directory's package.json, or `unknown`. */
export function packageVersion(dir: string): string {
  try {
    const v = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Throws AgentUnavailableError with `message` unless `binary` is an executable file. */
export function requireExecutable(binary: string, message: string): void {
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new AgentUnavailableError(message);
  }
}
