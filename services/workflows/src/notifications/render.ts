import type { NotificationContent } from './content.js';
import { oneLine } from './errors.js';

/** Failing tests listed by name in an e-mail; the rest are counted. */
const MAX_FAILING_TESTS = 20;
/** Evidence files listed in an e-mail; the rest are counted (the run's page lists them all). */
const MAX_EVIDENCE = 50;

/** The e-mail of a notification: a subject saying what happened, and the same body as plain text and as HTML. */
export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

/**
 * Renders a notification as an e-mail. The subject names the work item and what happened, e.g.
 * `[ameide] PBI-42 "Add login" — run completed, Definition of Done met`; the body has the run's
 * summary, the preview's URLs, the Definition of Done checklist, the impediment, the evidence and a
 * link to the run. Every value is untrusted (titles and errors come from work items and agents): the
 * HTML escapes all of them and links only http(s) URLs; the text and the subject keep each value on
 * its line.
 */
export function renderEmail(c: NotificationContent): RenderedEmail {
  const subject = oneLine(`[ameide] ${itemLabel(c)} — ${headline(c)}`, 250);
  return { subject, text: renderText(c), html: renderHtml(c, subject) };
}

/** The work item as `PBI-42 "Add login"` (or the run when it has no item). */
function itemLabel(c: NotificationContent): string {
  const title = oneLine(c.run.title, 80);
  const item = oneLine(c.run.workItemId, 60) || `run ${c.run.id.slice(0, 8)}`;
  return title ? `${item} "${title}"` : item;
}

/** What happened, in a few words. */
function headline(c: NotificationContent): string {
  switch (c.event) {
    case 'run_completed':
      return c.dod ? `run completed, Definition of Done ${c.dod.met ? 'met' : 'not met'}` : 'run completed';
    case 'run_failed':
      return `${c.run.status === 'handed_off' ? 'run handed off' : 'run failed'}: ${failure(c)}`;
    case 'run_cancelled':
      return 'run cancelled';
    case 'preview_live':
      return `preview live: ${c.preview?.url ?? c.links.run}`;
    case 'impediment_raised':
      return `impediment raised: ${c.impediment ? oneLine(c.impediment.reason, 100) || c.impediment.cause : failure(c)}`;
    case 'dod_failed': {
      const failed = (c.dod?.rules ?? []).filter((r) => !r.passed).map((r) => r.rule);
      return failed.length ? `Definition of Done not met: ${oneLine(failed.join(', '), 100)}` : 'Definition of Done not met';
    }
  }
}

/** Why a run did not finish: the phase that failed, else the first line of its error. */
function failure(c: NotificationContent): string {
  if (c.impediment?.phase) return `${oneLine(c.impediment.phase, 40)} phase failed`;
  const error = oneLine(c.run.error?.split('\n').find((l) => l.trim()) ?? '', 100);
  return error || 'see the run';
}

interface Field {
  label: string;
  value: string;
  /** Linked in HTML when it is an http(s) URL. */
  href?: string;
}

/** The run's summary, one field a line. */
function summary(c: NotificationContent): Field[] {
  const r = c.run;
  const fields: Field[] = [
    { label: 'Work item', value: itemLabel(c) },
    { label: 'Run', value: r.id, href: c.links.run },
    { label: 'Definition', value: r.definition },
    { label: 'Status', value: r.status.replaceAll('_', ' ') },
    { label: 'Branch', value: r.branch },
  ];
  if (r.baseCommit || r.headCommit) fields.push({ label: 'Commits', value: `${shortCommit(r.baseCommit)}..${shortCommit(r.headCommit)}` });
  if (r.filesChanged !== undefined || r.insertions !== undefined || r.deletions !== undefined) {
    const files = r.filesChanged ?? 0;
    fields.push({ label: 'Changes', value: `${files} ${files === 1 ? 'file' : 'files'} changed, +${r.insertions ?? 0} −${r.deletions ?? 0}` });
  }
  if (r.tests) fields.push({ label: 'Tests', value: `${r.tests.passed} passed, ${r.tests.failed} failed, ${r.tests.skipped} skipped` });
  if (r.pullRequest) {
    const pr = r.pullRequest;
    fields.push({ label: 'Pull request', value: `${pr.provider} #${pr.number} (${pr.state}) ${pr.url}`, href: pr.url });
  }
  if (r.durationMs !== undefined) fields.push({ label: 'Duration', value: duration(r.durationMs) });
  if (r.error) fields.push({ label: 'Error', value: r.error });
  if (r.handoffUri) fields.push({ label: 'Handoff', value: r.handoffUri });
  return fields.map((f) => ({ ...f, value: oneLine(f.value, 500) }));
}

function failingTests(c: NotificationContent): { names: string[]; more: number } {
  const all = c.run.tests?.failingTests ?? [];
  return { names: all.slice(0, MAX_FAILING_TESTS).map((t) => oneLine(t, 200)), more: Math.max(0, all.length - MAX_FAILING_TESTS) };
}

function impedimentFields(i: NonNullable<NotificationContent['impediment']>): Field[] {
  const fields: Field[] = [
    { label: 'Id', value: i.id },
    { label: 'Cause', value: i.cause.replaceAll('_', ' ') },
  ];
  if (i.phase) fields.push({ label: 'Phase', value: i.phase });
  fields.push({ label: 'Reason', value: i.reason });
  if (i.handoffUri) fields.push({ label: 'Handoff', value: i.handoffUri });
  return fields.map((f) => ({ ...f, value: oneLine(f.value, 500) }));
}

function evidenceRows(c: NotificationContent): { rows: { kind: string; name: string; sha256: string; size: string }[]; more: number } {
  const rows = c.evidence.slice(0, MAX_EVIDENCE).map((e) => ({
    kind: oneLine(e.kind, 40),
    name: oneLine(e.name, 200),
    sha256: oneLine(e.sha256, 64).slice(0, 12),
    size: bytes(e.sizeBytes),
  }));
  return { rows, more: Math.max(0, c.evidence.length - MAX_EVIDENCE) };
}

function renderText(c: NotificationContent): string {
  const out: string[] = [`${itemLabel(c)}: ${headline(c)}.`, ''];
  const table = (fields: Field[]) => {
    const width = Math.max(...fields.map((f) => f.label.length));
    for (const f of fields) out.push(`  ${f.label.padEnd(width)}  ${f.value}`);
  };
  out.push('Run');
  table(summary(c));
  const failing = failingTests(c);
  if (failing.names.length) {
    out.push('  Failing tests:');
    for (const t of failing.names) out.push(`    - ${t}`);
    if (failing.more) out.push(`    … and ${failing.more} more`);
  }
  if (c.preview) {
    out.push('', 'Preview');
    table(previewFields(c.preview));
  }
  if (c.dod) {
    out.push('', `Definition of Done: ${c.dod.met ? 'met' : 'not met'}`);
    for (const r of c.dod.rules) out.push(`  ${r.passed ? '✓' : '✗'} ${oneLine(r.rule, 100)}${r.detail ? `: ${oneLine(r.detail, 300)}` : ''}`);
  }
  if (c.impediment) {
    out.push('', 'Impediment');
    table(impedimentFields(c.impediment));
  }
  if (c.evidence.length) {
    const { rows, more } = evidenceRows(c);
    out.push('', `Evidence (${c.evidence.length})`);
    const kindWidth = Math.max(...rows.map((r) => r.kind.length));
    for (const r of rows) out.push(`  ${r.kind.padEnd(kindWidth)}  ${r.name}  sha256 ${r.sha256}  ${r.size}`);
    if (more) out.push(`  … and ${more} more`);
  }
  out.push('', `Open the run: ${oneLine(c.links.run, 500)}`, '');
  return out.join('\n');
}

function previewFields(p: NonNullable<NotificationContent['preview']>): Field[] {
  const fields: Field[] = [{ label: 'This run', value: oneLine(p.url, 500), href: p.url }];
  if (p.aliasUrl) fields.push({ label: 'Work item (latest run)', value: oneLine(p.aliasUrl, 500), href: p.aliasUrl });
  return fields;
}

function renderHtml(c: NotificationContent, subject: string): string {
  const td = 'padding:2px 12px 2px 0;vertical-align:top';
  const table = (fields: Field[]) =>
    `<table style="border-collapse:collapse">${fields
      .map((f) => `<tr><th align="left" style="${td};font-weight:600;white-space:nowrap">${esc(f.label)}</th><td style="${td}">${value(f)}</td></tr>`)
      .join('\n')}</table>`;
  const h2 = (text: string) => `<h2 style="font-size:16px;margin:20px 0 6px">${esc(text)}</h2>`;
  const parts: string[] = [`<p style="font-size:16px">${esc(`${itemLabel(c)}: ${headline(c)}.`)}</p>`, h2('Run'), table(summary(c))];
  const failing = failingTests(c);
  if (failing.names.length) {
    const more = failing.more ? `<li>… and ${failing.more} more</li>` : '';
    parts.push(`<p style="margin:8px 0 2px">Failing tests:</p><ul>${failing.names.map((t) => `<li><code>${esc(t)}</code></li>`).join('')}${more}</ul>`);
  }
  if (c.preview) parts.push(h2('Preview'), table(previewFields(c.preview)));
  if (c.dod) {
    const rules = c.dod.rules
      .map((r) => {
        const mark = r.passed ? '<span style="color:#1a7f37">✓</span>' : '<span style="color:#cf222e">✗</span>';
        return `<li style="list-style:none">${mark} <strong>${esc(oneLine(r.rule, 100))}</strong>${r.detail ? `: ${esc(oneLine(r.detail, 300))}` : ''}</li>`;
      })
      .join('\n');
    parts.push(h2(`Definition of Done: ${c.dod.met ? 'met' : 'not met'}`), `<ul style="padding-left:0;margin:0">${rules}</ul>`);
  }
  if (c.impediment) parts.push(h2('Impediment'), table(impedimentFields(c.impediment)));
  if (c.evidence.length) {
    const { rows, more } = evidenceRows(c);
    const body = rows
      .map(
        (r) =>
          `<tr><td style="${td}">${esc(r.kind)}</td><td style="${td}">${esc(r.name)}</td><td style="${td}"><code>${esc(r.sha256)}</code></td><td style="${td}">${esc(r.size)}</td></tr>`,
      )
      .join('\n');
    const tail = more ? `<tr><td colspan="4" style="${td}">… and ${more} more</td></tr>` : '';
    const head = ['Kind', 'Name', 'SHA-256', 'Size'].map((h) => `<th align="left" style="${td}">${h}</th>`).join('');
    parts.push(h2(`Evidence (${c.evidence.length})`), `<table style="border-collapse:collapse"><tr>${head}</tr>${body}${tail}</table>`);
  }
  const runHref = href(c.links.run);
  parts.push(`<p style="margin-top:20px">${runHref ? `<a href="${runHref}">Open the run</a>` : `Open the run: ${esc(c.links.run)}`}</p>`);
  return [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>${esc(subject)}</title></head>`,
    `<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#1f2328">`,
    ...parts,
    '</body></html>',
    '',
  ].join('\n');
}

/** A field's value in HTML: escaped, linked when it has an http(s) URL. */
function value(f: Field): string {
  const link = f.href ? href(f.href) : undefined;
  return link ? `<a href="${link}">${esc(f.value)}</a>` : esc(f.value);
}

/** `url` escaped for an href attribute, or undefined when it is not an http(s) URL (no javascript: or data: links). */
function href(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? esc(u.href) : undefined;
  } catch {
    return undefined;
  }
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** `s` as HTML text or attribute value. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]);
}

function shortCommit(sha: string | undefined): string {
  return sha ? oneLine(sha, 40).slice(0, 12) : '?';
}

function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  for (; v >= 1024 && i < units.length - 1; i++) v /= 1024;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/**
 * The JSON body of a webhook delivery (schema version 1). Keys are snake_case; a section the
 * notification does not have (`preview`, `dod`, `impediment`) is `null`, an optional field of `run`
 * that is unknown is left out, and `occurred_at` is left out when the time is not known. Receivers
 * dedupe on `id`, which is also the `x-ameide-delivery` header and stays the same on every retry.
 *
 * ```
 * {
 *   "id": string,                      // the delivery id
 *   "event": "run_completed" | "run_failed" | "run_cancelled" | "preview_live" | "impediment_raised" | "dod_failed",
 *   "tenant_id": string,
 *   "occurred_at"?: string,            // ISO 8601
 *   "run": {
 *     "id", "status", "definition", "work_item_id", "title", "branch": string,
 *     "error"?, "base_commit"?, "head_commit"?: string,
 *     "files_changed"?, "insertions"?, "deletions"?: number,
 *     "tests"?: { "passed", "failed", "skipped": number, "failing_tests": string[] },
 *     "pull_request"?: { "provider": string, "number": number, "url": string, "state": string },
 *     "handoff_uri"?: string, "duration_ms"?: number
 *   },
 *   "preview": { "url": string, "alias_url": string } | null,
 *   "dod": { "met": boolean, "rules": [{ "rule": string, "passed": boolean, "detail": string }] } | null,
 *   "evidence": [{ "kind", "name", "uri", "sha256": string, "size_bytes": number }],
 *   "impediment": { "id", "cause", "reason", "phase", "handoff_uri": string } | null,
 *   "links": { "run": string }
 * }
 * ```
 */
export interface WebhookPayload {
  id: string;
  event: NotificationContent['event'];
  tenant_id: string;
  occurred_at?: string;
  run: {
    id: string;
    status: string;
    definition: string;
    work_item_id: string;
    title: string;
    branch: string;
    error?: string;
    base_commit?: string;
    head_commit?: string;
    files_changed?: number;
    insertions?: number;
    deletions?: number;
    tests?: { passed: number; failed: number; skipped: number; failing_tests: string[] };
    pull_request?: { provider: string; number: number; url: string; state: string };
    handoff_uri?: string;
    duration_ms?: number;
  };
  preview: { url: string; alias_url: string } | null;
  dod: { met: boolean; rules: { rule: string; passed: boolean; detail: string }[] } | null;
  evidence: { kind: string; name: string; uri: string; sha256: string; size_bytes: number }[];
  impediment: { id: string; cause: string; reason: string; phase: string; handoff_uri: string } | null;
  links: { run: string };
}

/** The webhook body of a notification (see WebhookPayload for the schema). */
export function webhookPayload(c: NotificationContent, deliveryId: string): WebhookPayload {
  const r = c.run;
  const run: WebhookPayload['run'] = {
    id: r.id,
    status: r.status,
    definition: r.definition,
    work_item_id: r.workItemId,
    title: r.title,
    branch: r.branch,
    error: r.error,
    base_commit: r.baseCommit,
    head_commit: r.headCommit,
    files_changed: r.filesChanged,
    insertions: r.insertions,
    deletions: r.deletions,
    tests: r.tests && { passed: r.tests.passed, failed: r.tests.failed, skipped: r.tests.skipped, failing_tests: [...r.tests.failingTests] },
    pull_request: r.pullRequest && { provider: r.pullRequest.provider, number: r.pullRequest.number, url: r.pullRequest.url, state: r.pullRequest.state },
    handoff_uri: r.handoffUri,
    duration_ms: r.durationMs,
  };
  for (const key of Object.keys(run) as (keyof typeof run)[]) if (run[key] === undefined) delete run[key];
  const payload: WebhookPayload = {
    id: deliveryId,
    event: c.event,
    tenant_id: c.tenantId,
    occurred_at: c.occurredAt,
    run,
    preview: c.preview ? { url: c.preview.url, alias_url: c.preview.aliasUrl } : null,
    dod: c.dod ? { met: c.dod.met, rules: c.dod.rules.map((x) => ({ rule: x.rule, passed: x.passed, detail: x.detail })) } : null,
    evidence: c.evidence.map((e) => ({ kind: e.kind, name: e.name, uri: e.uri, sha256: e.sha256, size_bytes: e.sizeBytes })),
    impediment: c.impediment
      ? { id: c.impediment.id, cause: c.impediment.cause, reason: c.impediment.reason, phase: c.impediment.phase, handoff_uri: c.impediment.handoffUri }
      : null,
    links: { run: c.links.run },
  };
  if (payload.occurred_at === undefined) delete payload.occurred_at;
  return payload;
}
