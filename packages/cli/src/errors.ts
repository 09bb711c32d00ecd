import type { Ctx } from './context.js';

/** Whether nothing listens at the API's address (connection refused), anywhere in the error's causes. */
export function refused(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause)
    if (/ECONNREFUSED/.test(e.message) || (e as { code?: string }).code === 'ECONNREFUSED') return true;
  return false;
}

/** The Connect codes the CLI names (of @connectrpc/connect's Code; kept here so that this module loads nothing heavy). */
const CODE_NAMES: Record<number, string> = {
  3: 'invalid argument',
  5: 'not found',
  6: 'already exists',
  7: 'permission denied',
  9: 'failed precondition',
  14: 'unavailable',
  16: 'unauthenticated',
};

/**
 * A failed API call (a ConnectError) as one line, with what to do when the API is not there or did not
 * accept the token; anything else unchanged.
 */
export function apiError(err: unknown, api: Ctx['api']): unknown {
  if (!(err instanceof Error) || err.name !== 'ConnectError') return err;
  const e = err as Error & { code: number; rawMessage: string };
  const where = api?.url ?? 'the API';
  let message: string;
  if (e.code === 14 && refused(e)) message = `no API at ${where}: start one with \`make up\` or set AMEIDE_API_URL`;
  else if (e.code === 16) {
    const fix = !api
      ? 'check the token'
      : api.tokenSource === 'AMEIDE_TOKEN'
        ? 'fix AMEIDE_TOKEN'
        : api.tokenSource.startsWith('context ')
          ? `log in again: ameide login --context ${api.tokenSource.slice('context '.length)} --api-url ${api.url} --with-token`
          : api.tokenSource === 'the make up stack'
            ? 'the `make up` stack issued a new token: restart it with `make up`, or set AMEIDE_TOKEN'
            : 'check the token';
    message = `${where} did not accept the token from ${api?.tokenSource ?? 'the settings'} (${e.rawMessage}): ${fix}`;
  } else message = `${e.rawMessage} (${CODE_NAMES[e.code] ?? `code ${e.code}`})`;
  return Object.assign(new Error(message), { expected: true, exitCode: 1 });
}
