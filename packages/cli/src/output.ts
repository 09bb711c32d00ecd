import { toJson, type DescEnum, type DescMessage, type JsonObject, type JsonValue, type MessageShape } from '@bufbuild/protobuf';
import { timestampDate, type Timestamp } from '@bufbuild/protobuf/wkt';
import { stringify } from 'yaml';
import { commandLineError } from './args.js';

/** Where commands write; tests capture it. `err` (default: stderr) takes hints and notes that are not the command's output. */
export interface Output {
  out(line: string): void;
  err?(line: string): void;
}

/** How the terminal shows things: colour, and the width tables fit (none: no truncation). */
export interface Terminal {
  color: boolean;
  columns?: number;
  /** stdout is a terminal: live progress lines may be redrawn. */
  interactive: boolean;
}

export type Format = 'text' | 'wide' | 'json' | 'yaml';

/** `-o json|yaml|wide` and its alias `--json`, as one format. */
export function formatOf(opts: { output?: string; json?: boolean }): Format {
  if (opts.json && opts.output && opts.output !== 'json') throw commandLineError(`--json and -o ${opts.output}: use one of them`);
  if (opts.json) return 'json';
  return (opts.output as Format | undefined) ?? 'text';
}

/** Writes a value as JSON or YAML, or as people read it. */
export function emit(o: Output, format: Format, value: unknown, text: () => string, wide: () => string = text): void {
  if (format === 'json') o.out(JSON.stringify(value, null, 2));
  else if (format === 'yaml') o.out(stringify(value, { lineWidth: 0 }).trimEnd());
  else o.out(format === 'wide' ? wide() : text());
}

/** A hint or note on stderr (never mixed into output that is parsed). */
export function note(o: Output, line: string): void {
  if (o.err) o.err(line);
  else console.error(line);
}

/** An enum value as the CLI writes it everywhere: its name without the enum's prefix, lower case (RUN_STATUS_HANDED_OFF → handed_off). */
export function enumText(e: DescEnum, value: number | string): string {
  const v = typeof value === 'number' ? e.values.find((x) => x.number === value) : e.values.find((x) => x.name === value);
  if (!v) return String(value);
  return v.name.slice(e.sharedPrefix?.length ?? 0).toLowerCase();
}

/**
 * A message as JSON: proto JSON (camelCase fields, 64-bit integers as strings, timestamps as RFC 3339)
 * but with every enum value as its lower-case name without the enum's prefix, as the text output
 * shows it (`"status": "handed_off"`, not `"RUN_STATUS_HANDED_OFF"`).
 */
export function protoJson<Desc extends DescMessage>(schema: Desc, msg: MessageShape<Desc>, opts: { alwaysEmitImplicit?: boolean } = {}): JsonValue {
  return lowerEnums(schema, toJson(schema, msg, opts));
}

function lowerEnums(desc: DescMessage, json: JsonValue): JsonValue {
  if (!json || typeof json !== 'object' || Array.isArray(json) || desc.typeName.startsWith('google.protobuf.')) return json;
  const obj: JsonObject = json;
  const one = (kind: 'enum' | 'message' | 'scalar', e: DescEnum | undefined, m: DescMessage | undefined, v: JsonValue): JsonValue =>
    kind === 'enum' && e && (typeof v === 'string' || typeof v === 'number') ? enumText(e, v) : kind === 'message' && m ? lowerEnums(m, v) : v;
  for (const f of desc.fields) {
    const v = obj[f.jsonName];
    if (v === undefined || v === null) continue;
    switch (f.fieldKind) {
      case 'enum':
        obj[f.jsonName] = one('enum', f.enum, undefined, v);
        break;
      case 'message':
        obj[f.jsonName] = one('message', undefined, f.message, v);
        break;
      case 'list':
        if (Array.isArray(v))
          obj[f.jsonName] = v.map((x) => one(f.listKind, f.listKind === 'enum' ? f.enum : undefined, f.listKind === 'message' ? f.message : undefined, x));
        break;
      case 'map':
        if (typeof v === 'object' && !Array.isArray(v))
          for (const [k, x] of Object.entries(v))
            v[k] = one(f.mapKind, f.mapKind === 'enum' ? f.enum : undefined, f.mapKind === 'message' ? f.message : undefined, x);
        break;
      default:
        break;
    }
  }
  return obj;
}

const ANSI = { bold: '\x1b[1m', dim: '\x1b[2m', red: '\x1b[31m', green: '\x1b[32m', yellow: '\x1b[33m', cyan: '\x1b[36m', reset: '\x1b[0m' };
export type Colour = keyof typeof ANSI;

/** `text` in `colour` when colour is on. */
export function paint(t: Terminal, colour: Colour | undefined, text: string): string {
  return t.color && colour && text ? `${ANSI[colour]}${text}${ANSI.reset}` : text;
}

/** The colour of a run status (or any status word that reads the same): green done, red failed, yellow going. */
export function statusColour(status: string): Colour | undefined {
  if (status === 'completed' || status === 'live' || status === 'open' || status === 'delivered') return 'green';
  if (status === 'failed' || status === 'handed_off' || status === 'dead_lettered') return 'red';
  if (status === 'running' || status === 'pending' || status === 'draft') return 'yellow';
  if (status === 'queued' || status === 'cancelled' || status === 'stopped' || status === 'closed') return 'dim';
  return undefined;
}

export interface Column {
  header: string;
  /** The column that gives way when the table is wider than the terminal: its cells are cut with "…". */
  shrink?: boolean;
  /** Right-aligned (numbers). */
  right?: boolean;
  /** Colour of a cell (on a terminal only). */
  colour?: (cell: string) => Colour | undefined;
}

/**
 * Rows under upper-case headers, columns two spaces apart, fitted to the terminal's width by cutting
 * the shrinking column (never below 10 characters). `empty` is printed instead when there are no rows.
 */
export function table(t: Terminal, columns: Column[], rows: string[][], empty: string): string {
  if (!rows.length) return empty;
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  const shrink = columns.findIndex((c) => c.shrink);
  if (t.columns && shrink >= 0) {
    const total = widths.reduce((a, b) => a + b, 0) + 2 * (columns.length - 1);
    if (total > t.columns) widths[shrink] = Math.max(Math.min(10, widths[shrink]!), widths[shrink]! - (total - t.columns));
  }
  const cut = (s: string, w: number) => (s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s);
  const line = (cells: string[], header: boolean) =>
    cells
      .map((raw, i) => {
        const c = columns[i]!;
        const last = i === columns.length - 1;
        const s = cut(raw, widths[i]!);
        const padded = c.right ? s.padStart(widths[i]!) : last ? s : s.padEnd(widths[i]!);
        if (header) return paint(t, 'bold', padded);
        const colour = c.colour?.(raw);
        return colour ? padded.replace(s, paint(t, colour, s)) : padded;
      })
      .join('  ')
      .trimEnd();
  return [
    line(
      columns.map((c) => c.header.toUpperCase()),
      true,
    ),
    ...rows.map((r) => line(r, false)),
  ].join('\n');
}

/** A time as "3m ago" (seconds, minutes, hours, days; a date after 30 days), "-" when unset. */
export function ago(t: Timestamp | Date | undefined, now: Date = new Date()): string {
  if (!t) return '-';
  const d = t instanceof Date ? t : timestampDate(t);
  const s = Math.round((now.getTime() - d.getTime()) / 1000);
  if (s < 0) return 'just now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  if (s < 30 * 86400) return `${Math.floor(s / 86400)}d ago`;
  return d.toISOString().slice(0, 10);
}

/** A duration as people say it: "42s", "3m 12s", "2h 5m", "3d 4h". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** An absolute time as "2025-06-01 14:03:09" (UTC), "-" when unset. */
export function when(t: Timestamp | undefined): string {
  return t ? timestampDate(t).toISOString().replace('T', ' ').slice(0, 19) : '-';
}
