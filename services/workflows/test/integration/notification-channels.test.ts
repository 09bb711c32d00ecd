import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { NotificationContent } from '../../src/notifications/content.js';
import { createMailer } from '../../src/notifications/email.js';
import { DeliveryError } from '../../src/notifications/errors.js';
import { renderEmail, webhookPayload } from '../../src/notifications/render.js';
import { deliverWebhook, verifyWebhookSignature } from '../../src/notifications/webhook.js';
import { closedPort, startSmtpServer } from '../support/servers.js';

/** A run whose preview went live. */
const content: NotificationContent = {
  event: 'preview_live',
  tenantId: 'acme',
  run: {
    id: '1a2b3c4d-0000-4000-8000-000000000000',
    status: 'completed',
    definition: 'implement',
    workItemId: 'PBI-42',
    title: 'Add login <script>alert(1)</script>',
    branch: 'ameide/pbi-42',
    tests: { passed: 3, failed: 0, skipped: 0, failingTests: [] },
  },
  preview: { url: 'http://run-1a2b3c4d.acme.preview.localhost:8090/', aliasUrl: 'http://pbi-42.acme.preview.localhost:8090/' },
  dod: { met: true, rules: [{ rule: 'tests_pass', passed: true, detail: '3 passed' }] },
  evidence: [{ kind: 'diff', name: 'diff.patch', uri: 'file:///evidence/diff.patch', sha256: 'ab'.repeat(32), sizeBytes: 1234 }],
  links: { run: 'http://localhost:8080/runs/1a2b3c4d-0000-4000-8000-000000000000' },
};

/** The DeliveryError `p` rejects with. */
async function failure(p: Promise<unknown>): Promise<DeliveryError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DeliveryError) return err;
    throw err;
  }
  throw new Error('expected the delivery to fail');
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of cleanups.splice(0).reverse()) await close();
});

describe('e-mail over SMTP', () => {
  /** An SMTP error reply (what smtp-server sends for an error with a responseCode). */
  const reply = (responseCode: number, message: string) => Object.assign(new Error(message), { responseCode });

  function mailer(url: string, timeoutMs?: number) {
    const m = createMailer({ smtpUrl: url, from: 'Ameide <notifications@ameide.test>', timeoutMs });
    cleanups.push(async () => m.close());
    return m;
  }

  it('delivers a rendered e-mail with its subject, text and HTML parts and our Message-ID', async () => {
    const smtp = await startSmtpServer();
    cleanups.push(smtp.close);
    const deliveryId = randomUUID();
    const rendered = renderEmail(content);
    const sent = await mailer(smtp.url).send({
      to: 'dev@example.test',
      ...rendered,
      messageId: `<${deliveryId}@ameide>`,
      headers: { 'x-ameide-delivery': deliveryId },
    });
    expect(sent.response).toMatch(/^250/);
    expect(sent.latencyMs).toBeGreaterThanOrEqual(0);
    expect(smtp.received).toHaveLength(1);
    const mail = smtp.received[0];
    expect(mail.messageId).toBe(`<${deliveryId}@ameide>`);
    expect(mail.subject).toBe(rendered.subject);
    expect(mail.subject).toContain('preview live: http://run-1a2b3c4d.acme.preview.localhost:8090/');
    expect(mail.from?.text).toContain('notifications@ameide.test');
    expect(mail.headers.get('x-ameide-delivery')).toBe(deliveryId);
    expect(mail.text).toContain('http://run-1a2b3c4d.acme.preview.localhost:8090/');
    expect(mail.text).toContain('http://pbi-42.acme.preview.localhost:8090/');
    expect(mail.text).toContain('✓ tests_pass: 3 passed');
    expect(mail.html).toContain('<a href="http://run-1a2b3c4d.acme.preview.localhost:8090/">');
    expect(mail.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(mail.html).not.toContain('<script>');
  });

  it('sends a retry with the same Message-ID', async () => {
    const smtp = await startSmtpServer();
    cleanups.push(smtp.close);
    const m = mailer(smtp.url);
    const message = { to: 'dev@example.test', ...renderEmail(content), messageId: '<retry-1@ameide>' };
    await m.send(message);
    await m.send(message);
    expect(smtp.received.map((r) => r.messageId)).toEqual(['<retry-1@ameide>', '<retry-1@ameide>']);
  });

  it('fails permanently when the server refuses the recipient (550)', async () => {
    const smtp = await startSmtpServer({ onRcptTo: (_address, _session, callback) => callback(reply(550, 'No such user here')) });
    cleanups.push(smtp.close);
    const err = await failure(mailer(smtp.url).send({ to: 'nobody@example.test', ...renderEmail(content), messageId: '<p-1@ameide>' }));
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('550');
    expect(err.message).toContain('No such user here');
    expect(smtp.received).toHaveLength(0);
  });

  it('fails retryably when the server defers (451)', async () => {
    const smtp = await startSmtpServer({ onRcptTo: (_address, _session, callback) => callback(reply(451, 'Greylisted, try again later')) });
    cleanups.push(smtp.close);
    const err = await failure(mailer(smtp.url).send({ to: 'dev@example.test', ...renderEmail(content), messageId: '<t-1@ameide>' }));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('451');
  });

  it('fails retryably when the server is down', async () => {
    const port = await closedPort();
    const err = await failure(mailer(`smtp://127.0.0.1:${port}`).send({ to: 'dev@example.test', ...renderEmail(content), messageId: '<d-1@ameide>' }));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('fails retryably when the server never greets within the timeout', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    });
    const { port } = silent.address() as net.AddressInfo;
    const started = Date.now();
    const err = await failure(mailer(`smtp://127.0.0.1:${port}`, 300).send({ to: 'dev@example.test', ...renderEmail(content), messageId: '<s-1@ameide>' }));
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/ETIMEDOUT|timeout/i);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('refuses an SMTP URL of another scheme', () => {
    expect(() => createMailer({ smtpUrl: 'http://127.0.0.1:25', from: 'a@b.test' })).toThrow(DeliveryError);
  });
});

describe('webhooks', () => {
  interface Received {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    body: Buffer;
  }

  /** A node:http receiver: records every request and answers by path (`/status/<n>`, `/slow`, `/redirect`, anything else 204). */
  async function startReceiver(): Promise<{ base: string; received: Received[] }> {
    const received: Received[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
        const status = /^\/status\/(\d{3})$/.exec(req.url ?? '');
        if (status) {
          res.writeHead(Number(status[1]), { 'content-type': 'text/plain' });
          res.end(`answer ${status[1]}: ${'x'.repeat(500)}`);
        } else if (req.url === '/slow') {
          const timer = setTimeout(() => res.writeHead(204).end(), 5_000);
          res.on('close', () => clearTimeout(timer));
        } else if (req.url === '/redirect') {
          res.writeHead(302, { location: 'https://elsewhere.example/hook' }).end();
        } else {
          res.writeHead(204).end();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as net.AddressInfo;
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    );
    return { base: `http://127.0.0.1:${port}`, received };
  }

  const secret = 'subscriber-secret';

  it('posts the signed payload with its headers, and the same delivery id on a retry', async () => {
    const receiver = await startReceiver();
    const deliveryId = randomUUID();
    const body = webhookPayload(content, deliveryId);
    const o = { url: `${receiver.base}/hook?token=t`, secret, deliveryId, event: content.event, body };
    const first = await deliverWebhook(o);
    expect(first.status).toBe(204);
    expect(first.latencyMs).toBeGreaterThanOrEqual(0);
    await deliverWebhook(o);
    expect(receiver.received).toHaveLength(2);
    for (const r of receiver.received) {
      expect(r.method).toBe('POST');
      expect(r.url).toBe('/hook?token=t');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['user-agent']).toBe('ameide-notifications');
      expect(r.headers['x-ameide-event']).toBe('preview_live');
      expect(r.headers['x-ameide-delivery']).toBe(deliveryId);
      const signature = r.headers['x-ameide-signature-256'] as string;
      expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
      expect(verifyWebhookSignature(r.body, signature, secret)).toBe(true);
      expect(verifyWebhookSignature(r.body, signature, 'another-secret')).toBe(false);
      expect(verifyWebhookSignature(Buffer.concat([r.body, Buffer.from(' ')]), signature, secret)).toBe(false);
      const parsed = JSON.parse(r.body.toString('utf8')) as { id: string; event: string; preview: { alias_url: string } };
      expect(parsed.id).toBe(deliveryId);
      expect(parsed.event).toBe('preview_live');
      expect(parsed.preview.alias_url).toBe('http://pbi-42.acme.preview.localhost:8090/');
    }
    expect(receiver.received[0].body.equals(receiver.received[1].body)).toBe(true);
  });

  it('sends no signature for a subscription without a secret', async () => {
    const receiver = await startReceiver();
    await deliverWebhook({ url: `${receiver.base}/hook`, secret: '', deliveryId: 'd-1', event: 'run_completed', body: { a: 1 } });
    expect(receiver.received[0].headers['x-ameide-signature-256']).toBeUndefined();
    expect(verifyWebhookSignature(receiver.received[0].body, 'sha256=', '')).toBe(false);
  });

  it('classifies refusals: 5xx, 408 and 429 are retryable, other 4xx and redirects permanent', async () => {
    const receiver = await startReceiver();
    const send = (path: string) => failure(deliverWebhook({ url: `${receiver.base}${path}`, secret, deliveryId: 'd-2', event: 'run_failed', body: {} }));
    for (const status of [500, 503, 408, 429]) {
      const err = await send(`/status/${status}`);
      expect(err.retryable, String(status)).toBe(true);
      expect(err.message).toContain(String(status));
    }
    const notFound = await send('/status/404');
    expect(notFound.retryable).toBe(false);
    expect(notFound.message).toMatch(/^the webhook answered 404 Not Found: answer 404: x+…$/);
    expect(notFound.message.length).toBeLessThan(260);
    expect((await send('/status/410')).retryable).toBe(false);
    const redirect = await send('/redirect');
    expect(redirect.retryable).toBe(false);
    expect(redirect.message).toContain('302');
    expect(redirect.message).toContain('https://elsewhere.example/hook');
    expect(receiver.received.filter((r) => r.url === '/redirect')).toHaveLength(1);
  });

  it('fails retryably when the receiver is down', async () => {
    const port = await closedPort();
    const err = await failure(deliverWebhook({ url: `http://127.0.0.1:${port}/hook`, secret, deliveryId: 'd-3', event: 'run_failed', body: {} }));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('fails retryably when the receiver answers too late', async () => {
    const receiver = await startReceiver();
    const started = Date.now();
    const err = await failure(deliverWebhook({ url: `${receiver.base}/slow`, secret, deliveryId: 'd-4', event: 'run_failed', body: {}, timeoutMs: 300 }));
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('did not answer within 300 ms');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('refuses URLs that are not http(s)', async () => {
    for (const url of ['ftp://example.test/hook', 'file:///etc/passwd', 'not a url']) {
      const err = await failure(deliverWebhook({ url, secret, deliveryId: 'd-5', event: 'run_failed', body: {} }));
      expect(err.retryable, url).toBe(false);
    }
  });
});

afterAll(async () => {
  for (const close of cleanups.splice(0).reverse()) await close();
});
