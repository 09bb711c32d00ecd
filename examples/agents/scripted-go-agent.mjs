#!/usr/bin/env node
// The scripted coding agent of the Go sample (examples/go-sample), like scripted-agent.mjs for the
// JavaScript one. It reads its task from the prompt file named by AMEIDE_PROMPT_FILE and makes a real
// change in the working directory: for a task that asks for a `multiply` function it adds `Multiply`
// to calc.go and a test for it to multiply_test.go. The change is the same every time, byte for byte,
// so Go's build and test caches can recognise it in a later run.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

const promptFile = process.env.AMEIDE_PROMPT_FILE;
if (!promptFile) {
  console.error('AMEIDE_PROMPT_FILE is not set');
  process.exit(2);
}
const prompt = readFileSync(promptFile, 'utf8');
console.log(`agent: read task (${prompt.split('\n')[0]})`);

const wanted = /multiply/i.test(prompt) ? 'Multiply' : /divide/i.test(prompt) ? 'Divide' : undefined;
if (!wanted) {
  console.error('agent: the task asks for nothing this scripted agent knows how to do');
  process.exit(3);
}
if (!existsSync('calc.go')) {
  console.error('agent: no calc.go here: this agent works on the Go sample');
  process.exit(3);
}
const op = wanted === 'Multiply' ? '*' : '/';
const [x, y, expected] = wanted === 'Multiply' ? [6, 7, 42] : [42, 6, 7];
const testFile = `${wanted.toLowerCase()}_test.go`;
if (readFileSync('calc.go', 'utf8').includes(`func ${wanted}(`)) {
  // A rerun of the same work: the function exists, so strengthen its tests instead.
  appendFileSync(
    testFile,
    `\nfunc Test${wanted}ByOne(t *testing.T) {\n\tif got := ${wanted}(${x}, 1); got != ${x} {\n\t\tt.Fatalf("${wanted}(${x}, 1) = %d, want ${x}", got)\n\t}\n}\n`,
  );
  console.log(`agent: ${wanted}() exists already; added a test case to ${testFile}`);
  process.exit(0);
}

appendFileSync(
  'calc.go',
  `\n// ${wanted} ${wanted === 'Multiply' ? 'multiplies a by b' : 'divides a by b'}.\nfunc ${wanted}(a, b int) int {\n\treturn a ${op} b\n}\n`,
);
writeFileSync(
  testFile,
  `package calc\n\nimport "testing"\n\nfunc Test${wanted}(t *testing.T) {\n\tif got := ${wanted}(${x}, ${y}); got != ${expected} {\n\t\tt.Fatalf("${wanted}(${x}, ${y}) = %d, want ${expected}", got)\n\t}\n}\n`,
);
console.log(`agent: added ${wanted}() to calc.go and ${testFile}`);
