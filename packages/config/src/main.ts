import { ConfigError } from './errors.js';

/** Errors whose message is already one clear line for the user: printed without a stack trace. */
export interface ExpectedError {
  expected: true;
}

function isExpected(err: unknown): err is Error {
  return err instanceof ConfigError || (err instanceof Error && (err as Partial<ExpectedError>).expected === true);
}

/** Runs an entrypoint; expected failures print one line and exit 1, anything else prints its stack. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (isExpected(err)) console.error(`error: ${err.message}`);
    else console.error(err);
    process.exit(1);
  });
}
