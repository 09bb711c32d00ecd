#!/usr/bin/env node
// A scripted coding agent for the demo and tests. It reads its task from the prompt file named by
// AMEIDE_PROMPT_FILE and makes a real change in the working directory: for a task that asks for a
// `multiply` function it adds the function and a test for it. Real agents (Codex CLI, Claude Code, …)
// plug in the same way: a command run in the worktree with the prompt file in the environment.
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';

const promptFile = process.env.AMEIDE_PROMPT_FILE;
if (!promptFile) {
  console.error('AMEIDE_PROMPT_FILE is not set');
  process.exit(2);
}
const prompt = readFileSync(promptFile, 'utf8');
console.log(`agent: read task (${prompt.split('\n')[0]})`);

const wanted = /multiply/i.test(prompt) ? 'multiply' : /divide/i.test(prompt) ? 'divide' : undefined;
if (!wanted) {
  console.error('agent: the task asks for nothing this scripted agent knows how to do');
  process.exit(3);
}
const op = wanted === 'multiply' ? '*' : '/';
const [x, y, expected] = wanted === 'multiply' ? [6, 7, 42] : [42, 6, 7];
if (readFileSync('src/calc.js', 'utf8').includes(`export function ${wanted}(`)) {
  // A rerun of the same work: the function exists, so strengthen its tests instead.
  appendFileSync(`test/${wanted}.test.js`, `\ntest('${wanted} by one', () => assert.equal(${wanted}(${x}, 1), ${x}));\n`);
  console.log(`agent: ${wanted}() exists already; added a test case to test/${wanted}.test.js`);
  process.exit(0);
}

appendFileSync(
  'src/calc.js',
  `\n/** ${wanted === 'multiply' ? 'Multiplies a by b' : 'Divides a by b'}. */\nexport function ${wanted}(a, b) {\n  return a ${op} b;\n}\n`,
);
writeFileSync(
  `test/${wanted}.test.js`,
  `import { test } from 'node:test';\nimport assert from 'node:assert/strict';\nimport { ${wanted} } from '../src/calc.js';\n\ntest('${wanted}', () => assert.equal(${wanted}(${x}, ${y}), ${expected}));\n`,
);
console.log(`agent: added ${wanted}() to src/calc.js and test/${wanted}.test.js`);
