import { Redactor } from '../guardrails/redact.js';
import type { ForgeProvider } from './types.js';

export const PROVIDER_NAME: Readonly<Record<ForgeProvider, string>> = { github: 'GitHub', gitlab: 'GitLab' };

/**
 * A forge call that failed, with the forge's own message. `retryable` says whether trying the same call later can
 * succeed (rate limits, 5xx, network trouble); `retryAfterSeconds` is how long the forge asked to wait, when it said.
 * The message never contains the token: it is redacted before the error is built, so the stack is clean too.
 */
export class ForgeError extends Error {
  readonly provider: ForgeProvider;
  readonly status?: number;
  readonly retryAfterSeconds?: number;
  readonly retryable: boolean;

  constructor(provider: ForgeProvider, message: string, details: { status?: number; retryAfterSeconds?: number; retryable: boolean }) {
    super(message);
    this.name = 'ForgeError';
    this.provider = provider;
    if (details.status !== undefined) this.status = details.status;
    if (details.retryAfterSeconds !== undefined) this.retryAfterSeconds = details.retryAfterSeconds;
    this.retryable = details.retryable;
  }
}

/** Response headers by lower-case name (Octokit's shape; a fetch Headers object converts with Object.fromEntries). */
export type HeaderBag = Readonly<Record<string, string | number | undefined>>;

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return v === undefined ? undefined : String(v).trim();
}

/** Seconds from `retry-after` (delta-seconds or an HTTP date), rounded up, never negative. */
function retryAfterHeader(headers: HeaderBag, now: number): number | undefined {
  const v = header(headers, 'retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Seconds until the rate-limit window resets (`x-ratelimit-reset` on GitHub, `ratelimit-reset` on GitLab: epoch seconds). */
function resetHeader(headers: HeaderBag, now: number): number | undefined {
  const v = header(headers, 'x-ratelimit-reset') ?? header(headers, 'ratelimit-reset');
  if (!v || !/^\d+$/.test(v)) return undefined;
  return Math.max(0, Math.ceil(Number(v) - now / 1000));
}

/**
 * Whether an HTTP error is worth retrying, and after how long. Retryable: 429, 5xx, and 403 when it is a rate limit
 * (`x-ratelimit-remaining: 0`, a `retry-after`, or GitHub's "secondary rate limit" message). Everything else (401,
 * 404, 409, 422, ...) fails the same way again. The wait comes from `retry-after`, else, for an exhausted quota, from
 * the reset time; a 5xx is not told to wait for the hourly quota window.
 */
export function classifyHttpError(status: number, headers: HeaderBag, message: string, now = Date.now()): { retryable: boolean; retryAfterSeconds?: number } {
  const remaining = header(headers, 'x-ratelimit-remaining') ?? header(headers, 'ratelimit-remaining');
  const exhausted = remaining === '0';
  const retryAfter = retryAfterHeader(headers, now);
  const rateLimited = status === 429 || (status === 403 && (exhausted || retryAfter !== undefined || /rate limit/i.test(message)));
  const retryable = rateLimited || status >= 500;
  if (!retryable) return { retryable };
  const wait = retryAfter ?? (rateLimited && (exhausted || status === 429) ? resetHeader(headers, now) : undefined);
  return wait === undefined ? { retryable } : { retryable, retryAfterSeconds: wait };
}

/** Replaces every form of the token (raw, URL- or base64-encoded, ...) in `text`. */
export function redactToken(text: string, token: string): string {
  return new Redactor([token]).redact(text);
}

export interface HttpFailure {
  status: number;
  headers: HeaderBag;
  method: string;
  /** The request path (no origin, no query). */
  path: string;
  /** The forge's own message, already flattened to one line. */
  detail: string;
}

/** The ForgeError for an HTTP error response: "GitHub: <forge message> (HTTP 422 on POST /repos/o/r/pulls)". */
export function httpError(provider: ForgeProvider, failure: HttpFailure, token: string): ForgeError {
  const detail = failure.detail.trim() || `HTTP ${failure.status}`;
  const message = redactToken(`${PROVIDER_NAME[provider]}: ${detail} (HTTP ${failure.status} on ${failure.method.toUpperCase()} ${failure.path})`, token);
  return new ForgeError(provider, message, { status: failure.status, ...classifyHttpError(failure.status, failure.headers, failure.detail) });
}

/** The message of an error thrown by fetch, with its cause (Node's "fetch failed" hides the reason there). */
export function describeThrown(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? err.cause.message : typeof err.cause === 'string' ? err.cause : '';
  return cause && cause !== err.message ? `${err.message}: ${cause}` : err.message;
}

/** The ForgeError for a request that got no response (connection refused, reset, timeout, aborted): retryable. */
export function networkError(provider: ForgeProvider, method: string, path: string, err: unknown, token: string): ForgeError {
  const message = redactToken(`${PROVIDER_NAME[provider]}: request failed: ${describeThrown(err)} (${method.toUpperCase()} ${path})`, token);
  return new ForgeError(provider, message, { retryable: true });
}

/** Any error to a ForgeError: ForgeErrors pass (re-redacted if need be); anything else keeps its message and is not retryable. */
export function toForgeError(provider: ForgeProvider, err: unknown, token: string): ForgeError {
  if (err instanceof ForgeError) {
    const redacted = redactToken(err.message, token);
    if (redacted === err.message) return err;
    return new ForgeError(err.provider, redacted, err);
  }
  return new ForgeError(provider, redactToken(`${PROVIDER_NAME[provider]}: ${describeThrown(err)}`, token), { retryable: false });
}
