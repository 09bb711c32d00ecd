/**
 * Pure parsers turning test reports into counts: JUnit XML (classic surefire-style files and Node's test runner
 * output) and TAP (the output of a test command). No I/O here; the caller reads the files and bounds their size.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { Parser as TapParser, type Result as TapResult } from 'tap-parser';
import type { TestReportResult } from '@ameide/temporal';

/**
 * What a report says (the run summary's test report, read): errors count as failed, todo as skipped;
 * durationMs is the sum of testcase times (JUnit) or the plan's time (TAP, else 0); failing tests are
 * "classname › name" (JUnit) or the description (TAP), at most 50 of at most 300 characters; sources
 * are the report files, or "output" for TAP.
 */
export type TestCounts = Omit<TestReportResult, 'format' | 'error'> & { format: 'junit' | 'tap' };

export class ReportUnreadable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReportUnreadable';
  }
}

export const MAX_FAILING_TESTS = 50;
export const MAX_TEST_NAME = 300;

function addFailing(list: string[], name: string): void {
  if (list.length >= MAX_FAILING_TESTS) return;
  const flat = name.replace(/\s+/g, ' ').trim() || '(unnamed test)';
  list.push(flat.length > MAX_TEST_NAME ? `${flat.slice(0, MAX_TEST_NAME - 1)}…` : flat);
}

// ---------------------------------------------------------------------------------------------------------------
// JUnit

const BUILTIN_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Decodes the five XML built-in entities and character references; anything else (DTD-declared) stays literal. */
function decodeBuiltins(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' || ref[1] === 'X' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
      return Number.isInteger(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return BUILTIN_ENTITIES[ref] ?? whole;
  });
}

const ARRAY_TAGS = new Set(['testsuite', 'testcase', 'failure', 'error', 'skipped']);

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  // No DTD / entity processing at all: declared entities are never expanded; built-ins are decoded above.
  processEntities: false,
  htmlEntities: false,
  parseAttributeValue: false,
  parseTagValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (tagName) => ARRAY_TAGS.has(tagName),
});

type XmlNode = Record<string, unknown>;

function isNode(v: unknown): v is XmlNode {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function children(node: XmlNode, tag: string): unknown[] {
  const v = node[tag];
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

function attr(node: XmlNode, name: string): string | undefined {
  const v = node[`@_${name}`];
  return typeof v === 'string' ? decodeBuiltins(v) : undefined;
}

/** Walks a <testsuites>/<testsuite> element, counting every <testcase> below it (suites may nest). */
function walkSuite(node: XmlNode, counts: TestCounts, seconds: { total: number }): void {
  for (const tc of children(node, 'testcase')) {
    // `<testcase/>` without attributes parses as an empty string: a passed test without a name.
    const c: XmlNode = isNode(tc) ? tc : {};
    const time = Number(attr(c, 'time'));
    if (Number.isFinite(time) && time > 0) seconds.total += time;
    if ('failure' in c || 'error' in c) {
      counts.failed++;
      const name = attr(c, 'name') ?? '';
      const cls = attr(c, 'classname');
      addFailing(counts.failingTests, cls ? `${cls} › ${name}` : name);
    } else if ('skipped' in c) {
      counts.skipped++;
    } else {
      counts.passed++;
    }
  }
  for (const suite of children(node, 'testsuite')) {
    if (isNode(suite)) walkSuite(suite, counts, seconds);
  }
}

/** Parses JUnit XML documents (several files: counts add up). Throws ReportUnreadable with the file name on malformed XML. */
export function parseJUnit(files: Array<{ path: string; xml: string }>): TestCounts {
  const counts: TestCounts = { format: 'junit', passed: 0, failed: 0, skipped: 0, durationMs: 0, failingTests: [], sources: [] };
  const seconds = { total: 0 };
  for (const { path, xml } of files) {
    const valid = XMLValidator.validate(xml);
    if (valid !== true) {
      throw new ReportUnreadable(`${path}: malformed XML (line ${valid.err.line}: ${valid.err.msg})`);
    }
    let doc: unknown;
    try {
      doc = xmlParser.parse(xml);
    } catch (e) {
      throw new ReportUnreadable(`${path}: malformed XML (${e instanceof Error ? e.message : String(e)})`);
    }
    const roots = isNode(doc) ? [...children(doc, 'testsuites'), ...children(doc, 'testsuite')].filter(isNode) : [];
    if (roots.length === 0) throw new ReportUnreadable(`${path}: not a JUnit report (no <testsuites> or <testsuite> root)`);
    for (const root of roots) walkSuite(root, counts, seconds);
    counts.sources.push(path);
  }
  counts.durationMs = Math.round(seconds.total * 1000);
  return counts;
}

// ---------------------------------------------------------------------------------------------------------------
// TAP

/** Node's test runner ends its TAP with "# duration_ms N"; tap-parser itself understands "# time=Nms". */
const DURATION_COMMENT = /^#\s*duration_ms\s+(\d+(?:\.\d+)?)\s*$/;

/** Parses TAP text (a command's output; other lines around it are ignored); undefined when it holds no TAP plan or test line. */
export function parseTap(text: string): TestCounts | undefined {
  const counts: TestCounts = { format: 'tap', passed: 0, failed: 0, skipped: 0, durationMs: 0, failingTests: [], sources: ['output'] };
  let seen = false;
  let summaryMs: number | undefined;
  let parserTime: number | null = null;
  const parser = new TapParser();
  // Only the top-level parser's events: subtests report to child parsers, their results are not counted.
  let ended = false;
  parser.on('plan', () => {
    // On end() without any plan, tap-parser synthesizes "1..0 # no tests found": that one does not count.
    if (!ended) seen = true;
  });
  parser.on('assert', (res: TapResult) => {
    seen = true;
    if (res.todo !== false || res.skip !== false) counts.skipped++;
    else if (res.ok) counts.passed++;
    else {
      counts.failed++;
      addFailing(counts.failingTests, res.name);
    }
  });
  parser.on('comment', (line: string) => {
    const m = DURATION_COMMENT.exec(line.trim());
    if (m) summaryMs = Number(m[1]);
  });
  parser.on('complete', (results: { time: number | null }) => {
    parserTime = results.time;
  });
  parser.write(text.endsWith('\n') ? text : `${text}\n`);
  ended = true;
  parser.end();
  if (!seen) return undefined;
  const ms = parserTime ?? summaryMs ?? 0;
  counts.durationMs = Number.isFinite(ms) ? Math.round(ms) : 0;
  return counts;
}
