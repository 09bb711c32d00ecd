/** A setting is missing or wrong. The message is one line naming what to fix. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
