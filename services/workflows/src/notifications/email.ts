import nodemailer from 'nodemailer';
import { DeliveryError, oneLine } from './errors.js';

/** How long each step of an SMTP exchange may take when the caller does not say: connecting, the greeting, and any wait on the socket after. */
export const DEFAULT_SMTP_TIMEOUT_MS = 30_000;

/** One e-mail to send. `messageId` (`<deliveryId@ameide>`) is the same on every retry, so a message that went through twice reads as one. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
  messageId: string;
  headers?: Record<string, string>;
}

export interface Mailer {
  /** One attempt to hand `m` to the SMTP server; throws a DeliveryError saying whether another attempt may succeed. */
  send(m: MailMessage): Promise<{ latencyMs: number; response: string }>;
  close(): void;
}

/** Nodemailer error codes of a message or setup that no retry can fix; every other failure without an SMTP reply is the connection's. */
const PERMANENT_CODES = new Set(['ECONFIG', 'ENOAUTH', 'EENVELOPE', 'EMESSAGE', 'EMAXRECIPIENTS', 'EREQUIRETLS', 'EFILEACCESS', 'EURLACCESS', 'EOTP']);

/**
 * Sends e-mail through the SMTP server of `smtpUrl` (`smtp://` with STARTTLS when offered, or
 * `smtps://`; credentials in the URL) as `from`. One connection per message: a send is one attempt,
 * retried by the caller. An SMTP 5xx reply (but 503, a bad command sequence) is permanent; a 4xx reply,
 * a refused or cut connection and a timeout are retryable.
 */
export function createMailer(o: { smtpUrl: string; from: string; timeoutMs?: number }): Mailer {
  let scheme: string;
  try {
    scheme = new URL(o.smtpUrl).protocol;
  } catch {
    throw new DeliveryError(false, 'the SMTP URL is not a valid URL');
  }
  if (scheme !== 'smtp:' && scheme !== 'smtps:') throw new DeliveryError(false, `the SMTP URL must be smtp:// or smtps://, not ${scheme}//`);
  const timeout = o.timeoutMs ?? DEFAULT_SMTP_TIMEOUT_MS;
  const transport = nodemailer.createTransport({
    url: o.smtpUrl,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    dnsTimeout: timeout,
    // Messages are rendered strings: nothing of theirs may make the mailer read files or fetch URLs.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return {
    async send(m) {
      if (!m.to.trim()) throw new DeliveryError(false, 'the e-mail has no recipient');
      const started = performance.now();
      try {
        const info = await transport.sendMail({
          from: o.from,
          to: m.to,
          subject: m.subject,
          text: m.text,
          html: m.html,
          messageId: m.messageId,
          headers: m.headers,
        });
        return { latencyMs: Math.round(performance.now() - started), response: info.response };
      } catch (err) {
        throw smtpError(err);
      }
    },
    close() {
      transport.close();
    },
  };
}

/** A DeliveryError for what nodemailer threw. */
function smtpError(err: unknown): DeliveryError {
  const e = (err ?? {}) as { message?: unknown; code?: unknown; responseCode?: unknown; command?: unknown };
  const message = oneLine(typeof e.message === 'string' && e.message ? e.message : String(err), 300);
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (typeof e.responseCode === 'number') {
    const permanent = e.responseCode >= 500 && e.responseCode !== 503;
    const command = typeof e.command === 'string' && e.command ? ` to ${oneLine(e.command, 20)}` : '';
    return new DeliveryError(!permanent, `the SMTP server answered ${e.responseCode}${command}: ${message}`, { cause: err });
  }
  if (code && PERMANENT_CODES.has(code)) return new DeliveryError(false, `the message could not be sent (${code}): ${message}`, { cause: err });
  return new DeliveryError(true, `could not talk to the SMTP server${code ? ` (${code})` : ''}: ${message}`, { cause: err });
}
