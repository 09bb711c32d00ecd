// The calculator's preview: a page that tries every function of src/calc.js. It serves on $PORT
// (on 127.0.0.1) until it is stopped; /health answers once it is up.
import { createServer } from 'node:http';
import * as calc from '../src/calc.js';

const examples = { add: [2, 3], subtract: [9, 4], multiply: [6, 7], divide: [84, 2] };
const rows = Object.entries(calc)
  .filter(([, f]) => typeof f === 'function')
  .map(([name, f]) => {
    const args = examples[name] ?? [1, 2];
    return `<tr><td><code>${name}(${args.join(', ')})</code></td><td>${f(...args)}</td></tr>`;
  });
const page = `<!doctype html><title>sample-calculator preview</title><h1>sample-calculator</h1><table>${rows.join('')}</table>\n`;

const server = createServer((req, res) => {
  if (req.url === '/health') return res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
});
server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1', () => console.log(`preview listening on ${process.env.PORT ?? 8080}`));
