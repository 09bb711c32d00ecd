// Runs inside the sandbox with the system node and no node_modules, hence plain ESM and only node: built-ins.
//
// Usage: node egress-forwarder.mjs <port> <unixSocketPath> -- <command> [args…]
//
// The sandbox has only its own loopback, so HTTP clients in it are pointed at 127.0.0.1:<port>; this
// relays every such connection, byte for byte, to the worker's egress proxy on the mounted UNIX
// socket, where the allowlist is enforced. It then runs the command and exits as the command did.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { constants } from 'node:os';

/** Exit codes of the wrapper itself, as env(1) and shells use them. */
const USAGE = 125;
const NOT_EXECUTABLE = 126;
const NOT_FOUND = 127;

function fail(message, code) {
  process.stderr.write(`egress-forwarder: ${message}\n`);
  process.exit(code);
}

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const [portArg, socketPath] = argv;
const port = Number(portArg);
if (sep !== 2 || argv.length < 4 || !Number.isInteger(port) || port < 1 || port > 65535 || !socketPath) {
  fail('usage: egress-forwarder.mjs <port> <unixSocketPath> -- <command> [args…]', USAGE);
}
const [command, ...args] = argv.slice(sep + 1);

function relay(client) {
  const upstream = net.connect({ path: socketPath, allowHalfOpen: true });
  const abort = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', abort);
  // Without the proxy the client gets a clean FIN; its unread request is drained so closing does not reset it.
  upstream.on('error', () => {
    client.unpipe(upstream);
    client.resume();
    client.end();
  });
  // end(), not destroy(): bytes still queued for the other side (a 403 body, a download's tail) must arrive.
  client.on('close', () => upstream.end());
  upstream.on('close', () => client.end());
  client.pipe(upstream);
  upstream.pipe(client);
}

const server = net.createServer({ allowHalfOpen: true }, relay);
server.on('error', (e) => fail(`cannot listen on 127.0.0.1:${port}: ${e.message}`, USAGE));
server.listen(port, '127.0.0.1', run);

function run() {
  const child = spawn(command, args, { stdio: 'inherit' });
  const forward = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => forward(signal));
  child.on('error', (e) => fail(`cannot run ${command}: ${e.message}`, e.code === 'ENOENT' ? NOT_FOUND : NOT_EXECUTABLE));
  child.on('exit', (code, signal) => {
    // Open relays are not waited for: the command is what the caller waits on.
    process.exit(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1));
  });
}
