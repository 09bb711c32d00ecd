/**
 * One failed delivery attempt of a notification (webhook or e-mail). `retryable` says whether another
 * attempt may succeed (the receiver was away, slow or busy) or would fail the same way (the receiver
 * refused the message): the delivery pipeline retries the first with backoff and dead-letters the second
 * at once. The message says what happened in one line, for the delivery's `last_error`.
 */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';

  constructor(
    readonly retryable: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** `text` on one line (runs of whitespace and control characters as one space), cut to `max` characters. */
export function oneLine(text: string, max = 200): string {
  const line = text.replace(/[\s\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
