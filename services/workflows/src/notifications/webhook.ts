import { createHmac, timingSafeEqual } from 'node:crypto';
import { DeliveryError, oneLine } from './errors.js';

/** The headers of a notification webhook delivery. */
export const NOTIFICATION_WEBHOOK_HEADERS = {
  event: 'x-ameide-event',
  /** The delivery id: the same on every retry of a delivery, so receivers dedupe on it. */
  delivery: 'x-ameide-delivery',
  /** `sha256=<hex HMAC-SHA256 of the raw body with the subscriber's secret>`, like GitHub's X-Hub-Signature-256. */
  signature: 'x-ameide-signature-256',
} as const;

/** How long one delivery attempt may take, answer included, when the caller does not say. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** How much of a refusal's answer is read (its first 200 characters go into the error). */
const MAX_ANSWER_BYTES = 4096;

/** The signature header of `body`: `sha256=` and the hex HMAC-SHA256 of its exact bytes with `secret`. */
export function signWebhook(body: Buffer | string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Whether `header` (the x-ameide-signature-256 of a delivery) is the signature of the raw `body` with
 * `secret`; compared in constant time. Receivers must verify the bytes as received, before parsing.
 * An empty secret verifies nothing.
 */
export function verifyWebhookSignature(body: Buffer | string, header: string, secret: string): boolean {
  if (!secret || typeof header !== 'string') return false;
  const expected = Buffer.from(signWebhook(body, secret));
  const given = Buffer.from(header.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * One attempt to POST `body` as JSON to a subscriber's webhook. Resolves on a 2xx answer; otherwise
 * throws a DeliveryError, retryable when the receiver was unreachable, cut the connection, took longer
 * than `timeoutMs` (default 10 s, answer included), or answered 5xx, 408 or 429; permanent for any
 * other answer (a 3xx too: redirects are not followed) and for a URL that is not http(s). The body is
 * signed when `secret` is set (a subscription without a secret gets unsigned deliveries).
 */
export async function deliverWebhook(o: {
  url: string;
  secret: string;
  deliveryId: string;
  event: string;
  body: unknown;
  timeoutMs?: number;
}): Promise<{ status: number; latencyMs: number }> {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new DeliveryError(false, `the webhook URL is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new DeliveryError(false, `the webhook URL must be http or https, not ${url.protocol}`);
  const body = Buffer.from(JSON.stringify(o.body), 'utf8');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'ameide-notifications',
    [NOTIFICATION_WEBHOOK_HEADERS.event]: o.event,
    [NOTIFICATION_WEBHOOK_HEADERS.delivery]: o.deliveryId,
  };
  if (o.secret) headers[NOTIFICATION_WEBHOOK_HEADERS.signature] = signWebhook(body, o.secret);
  const timeoutMs = o.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const started = performance.now();
  // Where the error says it went: the origin only (a URL's path or query may hold a token).
  const where = url.origin;
  try {
    const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: abort.signal });
    if (res.status >= 200 && res.status < 300) {
      await res.body?.cancel().catch(() => undefined);
      return { status: res.status, latencyMs: Math.round(performance.now() - started) };
    }
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel().catch(() => undefined);
      const location = res.headers.get('location');
      throw new DeliveryError(
        false,
        `the webhook answered ${res.status} (a redirect${location ? ` to ${oneLine(location)}` : ''}); redirects are not followed`,
      );
    }
    const answer = await readStart(res);
    const retryable = res.status >= 500 || res.status === 408 || res.status === 429;
    throw new DeliveryError(
      retryable,
      `the webhook answered ${res.status}${res.statusText ? ` ${oneLine(res.statusText, 60)}` : ''}${answer ? `: ${answer}` : ''}`,
    );
  } catch (err) {
    if (err instanceof DeliveryError) throw err;
    if (abort.signal.aborted) throw new DeliveryError(true, `the webhook at ${where} did not answer within ${timeoutMs} ms`, { cause: err });
    throw new DeliveryError(true, `could not reach the webhook at ${where}: ${networkError(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** The first 200 characters of an answer's body, on one line (at most MAX_ANSWER_BYTES are read). */
async function readStart(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < MAX_ANSWER_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // A body cut short: what arrived says enough.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return oneLine(Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8'), 200);
}

/** What went wrong on the wire, from fetch's `TypeError: fetch failed` and the cause it wraps. */
function networkError(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: unknown; code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    const message = typeof e.message === 'string' ? e.message : '';
    if (message && message !== 'fetch failed') parts.push(message);
    else if (typeof e.code === 'string') parts.push(e.code);
  }
  return oneLine(parts.join(': ') || String(err), 300);
}
