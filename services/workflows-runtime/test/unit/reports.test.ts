import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECT_SCRIPT, collectEnv, readCollected } from '../../src/reports/collect.js';
import { parseJUnit, parseTap, ReportUnreadable } from '../../src/reports/parse.js';

/** Runs Node's own test runner on a small suite (one pass, one failure, one skip, one todo, one failing parent with subtests). */
let dir: string;
function nodeTest(reporter: 'junit' | 'tap'): string {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ['--test', `--test-reporter=${reporter}`, 'sample.test.mjs'], { cwd: dir, env, encoding: 'utf8', timeout: 30_000 });
  expect(r.status).toBe(1); // a test fails
  return r.stdout;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'reports-'));
  writeFileSync(
    join(dir, 'sample.test.mjs'),
    `import test from 'node:test';
import assert from 'node:assert';
test('adds up', () => assert.strictEqual(1 + 1, 2));
test('breaks & bends', () => assert.strictEqual(1, 2));
test('later', { skip: 'not now' }, () => {});
test('some day', { todo: true }, () => {});
test('outer', async (t) => {
  await t.test('inner ok', () => {});
  await t.test('inner bad', () => { throw new Error('boom'); });
});
`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseJUnit', () => {
  it("reads Node's test runner output (testcases directly under <testsuites>, nested suites, comments)", () => {
    const xml = nodeTest('junit');
    expect(xml).toContain('<testsuites>');
    expect(xml).toContain('<!--');
    const c = parseJUnit([{ path: 'node-junit.xml', xml }]);
    expect(c).toMatchObject({ format: 'junit', passed: 2, failed: 2, skipped: 2, sources: ['node-junit.xml'] });
    expect(c.failingTests).toEqual(['test › breaks & bends', 'test › inner bad']);
    expect(c.durationMs).toBeGreaterThanOrEqual(0);
    expect(c.durationMs).toBeLessThan(10_000);
  });

  const surefire = `<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" name="com.example.AppTest" time="3.5" tests="6" errors="1" skipped="1" failures="2">
  <properties><property name="java.version" value="21"/></properties>
  <testcase name="passes" classname="com.example.AppTest" time="0.25"/>
  <testcase name="alsoPasses" classname="com.example.AppTest" time="0.75"></testcase>
  <testcase name="compares &quot;a&quot; &lt; b" classname="com.example.AppTest" time="1.0">
    <failure message="expected: &lt;1&gt; but was: &lt;2&gt;" type="org.opentest4j.AssertionFailedError"><![CDATA[stack <here>]]></failure>
    <system-out><![CDATA[some output]]></system-out>
  </testcase>
  <testcase name="noClass" time="0.5"><failure/></testcase>
  <testcase name="explodes" classname="com.example.AppTest" time="1.0"><error message="NPE" type="java.lang.NullPointerException">at X</error></testcase>
  <testcase name="ignored" classname="com.example.AppTest" time="0"><skipped/></testcase>
</testsuite>`;

  it('reads a classic surefire-like file: failures and errors fail, skipped skips, times add up', () => {
    const c = parseJUnit([{ path: 'target/surefire-reports/TEST-AppTest.xml', xml: surefire }]);
    expect(c).toEqual({
      format: 'junit',
      passed: 2,
      failed: 3,
      skipped: 1,
      durationMs: 3500,
      failingTests: ['com.example.AppTest › compares "a" < b', 'noClass', 'com.example.AppTest › explodes'],
      sources: ['target/surefire-reports/TEST-AppTest.xml'],
    });
  });

  it('adds up several files, including <testsuites> with nested <testsuite>s', () => {
    const nested = `<testsuites name="all" tests="3">
  <testsuite name="a"><testcase name="one" classname="A" time="0.1"/>
    <testsuite name="a.inner"><testcase name="two" classname="A.inner" time="0.2"><failure message="no"/></testcase></testsuite>
  </testsuite>
  <testsuite name="b"><testcase name="three" classname="B" time="0.2"><skipped message="later"/></testcase></testsuite>
</testsuites>`;
    const c = parseJUnit([
      { path: 'a.xml', xml: surefire },
      { path: 'b.xml', xml: nested },
    ]);
    expect(c).toMatchObject({ passed: 3, failed: 4, skipped: 2, durationMs: 4000, sources: ['a.xml', 'b.xml'] });
    expect(c.failingTests.at(-1)).toBe('A.inner › two');
  });

  it('throws ReportUnreadable naming the file on malformed XML', () => {
    const bad = () =>
      parseJUnit([
        { path: 'ok.xml', xml: surefire },
        { path: 'reports/broken.xml', xml: '<testsuite><testcase name="x"></testsuite>' },
      ]);
    expect(bad).toThrow(ReportUnreadable);
    expect(bad).toThrow(/reports\/broken\.xml/);
    expect(() => parseJUnit([{ path: 'empty.xml', xml: '' }])).toThrow(/empty\.xml/);
    expect(() => parseJUnit([{ path: 'other.xml', xml: '<coverage line-rate="1"/>' }])).toThrow(ReportUnreadable);
  });

  it('does not expand DTD entities (billion laughs)', () => {
    const levels = Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i};`.repeat(10)}">`).join('\n');
    const bomb = `<?xml version="1.0"?>
<!DOCTYPE lolz [
<!ENTITY lol0 "lol">
${levels}
]>
<testsuite name="bomb"><testcase name="n &lol9;" classname="c &amp; d"><failure message="&lol9;">&lol9;</failure></testcase></testsuite>`;
    const started = Date.now();
    const c = parseJUnit([{ path: 'bomb.xml', xml: bomb }]);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(c.failed).toBe(1);
    expect(c.failingTests).toEqual(['c & d › n &lol9;']);
    expect(c.failingTests[0]).not.toContain('lollol');
  });

  it('caps failing names at 50, each at 300 chars', () => {
    const cases = Array.from({ length: 80 }, (_, i) => `<testcase name="t${i} ${'x'.repeat(400)}" classname="K"><failure/></testcase>`).join('');
    const c = parseJUnit([{ path: 'many.xml', xml: `<testsuite>${cases}</testsuite>` }]);
    expect(c.failed).toBe(80);
    expect(c.failingTests).toHaveLength(50);
    expect(c.failingTests[0]!.startsWith('K › t0 xxx')).toBe(true);
    for (const n of c.failingTests) expect(n.length).toBeLessThanOrEqual(300);
  });
});

describe('parseTap', () => {
  it("reads Node's test runner TAP with output around it; only top-level results count", () => {
    const tap = nodeTest('tap');
    const c = parseTap(`> pnpm test\nbuilding...\n${tap}\nDone in 1.2s\n`);
    // Top level: "adds up" passes, "breaks & bends" and "outer" fail, skip and todo are skipped.
    expect(c).toMatchObject({ format: 'tap', passed: 1, failed: 2, skipped: 2, sources: ['output'] });
    expect(c!.failingTests).toEqual(['breaks & bends', 'outer']);
    expect(c!.durationMs).toBeGreaterThan(0); // from the "# duration_ms" summary
  });

  it('counts # SKIP and # TODO directives as skipped, reads # time=', () => {
    const c = parseTap(
      [
        'TAP version 14',
        '1..5',
        'ok 1 - fine',
        'ok 2 - skipped one # SKIP no db',
        'not ok 3 - unfinished # TODO later',
        'ok 4 # skip',
        'not ok 5 - real failure',
        '# time=1234.5ms',
        '',
      ].join('\n'),
    );
    expect(c).toEqual({ format: 'tap', passed: 1, failed: 1, skipped: 3, durationMs: 1235, failingTests: ['real failure'], sources: ['output'] });
  });

  it('returns undefined for text without TAP, counts for a bare plan', () => {
    expect(parseTap('')).toBeUndefined();
    expect(parseTap('compiling...\nall good\nno tests here\n')).toBeUndefined();
    expect(parseTap('1..0 # SKIP nothing to run')).toMatchObject({ passed: 0, failed: 0, skipped: 0, durationMs: 0 });
  });

  it('caps failing names at 50', () => {
    const lines = Array.from({ length: 70 }, (_, i) => `not ok ${i + 1} - case ${i} ${'y'.repeat(500)}`);
    const c = parseTap(`1..70\n${lines.join('\n')}\n`);
    expect(c!.failed).toBe(70);
    expect(c!.failingTests).toHaveLength(50);
    for (const n of c!.failingTests) expect(n.length).toBeLessThanOrEqual(300);
  });
});

describe('collecting the report files in the sandbox (COLLECT_SCRIPT, run here by sh in a checkout)', () => {
  /** A checkout with reports in several places, installed dependencies, git's directory and a symlinked directory. */
  function checkout(): string {
    const co = mkdtempSync(join(tmpdir(), 'collect-'));
    const put = (path: string, text = `<testsuite name="${path}"/>`) => {
      mkdirSync(join(co, dirname(path)), { recursive: true });
      writeFileSync(join(co, path), text);
    };
    put('reports/junit.xml');
    put('reports/unit/more.xml');
    put('reports/notes.txt', 'not a report');
    put('other.xml');
    put('packages/a/test-results/junit.xml');
    put('node_modules/dep/reports/junit.xml');
    put('.git/reports/junit.xml');
    symlinkSync(join(co, 'reports'), join(co, 'linked'));
    symlinkSync(join(co, 'reports'), join(co, 'packages/a/reports'));
    return co;
  }
  async function collect(co: string, globs: string[]): Promise<string[]> {
    const out = mkdtempSync(join(tmpdir(), 'collected-'));
    const r = spawnSync('sh', ['-c', COLLECT_SCRIPT], { cwd: co, env: { PATH: process.env.PATH, ...collectEnv(globs, out) }, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return (await readCollected(out)).map((f) => f.path);
  }

  it('finds the files a glob names below its literal directories, `*` reaching into subdirectories, as a walk of the whole checkout would', async () => {
    const co = checkout();
    expect(await collect(co, ['reports/*.xml'])).toEqual(['reports/junit.xml', 'reports/unit/more.xml']);
    expect(await collect(co, ['packages/a/test-results/junit.xml', 'reports/unit/*'])).toEqual(['packages/a/test-results/junit.xml', 'reports/unit/more.xml']);
  });

  it('searches the whole checkout but .git for a glob that begins with a wildcard', async () => {
    const co = checkout();
    expect(await collect(co, ['**/junit.xml'])).toEqual(['node_modules/dep/reports/junit.xml', 'packages/a/test-results/junit.xml', 'reports/junit.xml']);
  });

  it('goes neither into .git nor through a symlinked directory', async () => {
    const co = checkout();
    expect(await collect(co, ['.git/reports/*.xml', 'linked/*.xml', 'packages/a/reports/*.xml', 'missing/*.xml'])).toEqual([]);
  });
});
