// Runs the browser tests: node web/tests/run.mjs [test files…]
//
// Builds nothing. Takes the gateway binary from PUSHGATE_BIN (default: the debug build under
// ${CARGO_TARGET_DIR:-target}, else the release build), starts it on a free 127.0.0.1 port with
// a temp demo db and `--web-dir web`, runs every web/tests/*.test.mjs with node's test runner
// (one file at a time; each file may start gateways of its own), stops the gateway, and exits
// with the runner's status. Needs `npm ci --prefix web/tests` and Chromium at /usr/bin/chromium
// (or CHROMIUM_PATH).

import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gatewayBinary, startGateway } from './lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The whole suite gets this long; then it is stopped and fails. */
const SUITE_TIMEOUT_MS = 8 * 60_000;

const files = process.argv.slice(2).length
  ? process.argv.slice(2).map((file) => path.resolve(file))
  : readdirSync(here)
      .filter((name) => name.endsWith('.test.mjs'))
      .sort()
      .map((name) => path.join(here, name));

console.log(`# gateway binary: ${gatewayBinary()}`);
let gateway;
try {
  gateway = await startGateway();
} catch (error) {
  console.error(`# ${error.message}`);
  process.exit(1);
}
console.log(`# gateway: ${gateway.url} (demo db ${gateway.dbPath})`);
console.log(`# test files: ${files.map((file) => path.relative(process.cwd(), file)).join(', ')}`);

const runner = spawn(
  process.execPath,
  ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  {
    stdio: 'inherit',
    // Its own process group, so a stop reaches the test files' processes too.
    detached: true,
    env: {
      ...process.env,
      PUSHGATE_URL: gateway.url,
      PUSHGATE_DEMO_DB: gateway.dbPath,
      PUSHGATE_BIN: gatewayBinary(),
    },
  },
);

/** Signals the runner's process group (the runner and the test files; they stop their gateways and browsers). */
const signalRunner = (signal) => {
  try {
    process.kill(-runner.pid, signal);
  } catch {
    // already gone
  }
};
/** SIGTERM to the runner's group, SIGKILL 5 s later if it is still there. */
const stopRunner = () => {
  signalRunner('SIGTERM');
  setTimeout(() => signalRunner('SIGKILL'), 5000).unref();
};

// lib.mjs's own signal handlers are for the test files; this process stops the runner first.
process.removeAllListeners('SIGINT');
process.removeAllListeners('SIGTERM');
let stopping = false;
const shutdown = async (signal) => {
  if (stopping) return;
  stopping = true;
  console.error(`# ${signal}: stopping the tests and the gateway`);
  stopRunner();
  await gateway.stop();
  process.exit(130);
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

const suiteTimer = setTimeout(() => {
  console.error(`# the suite ran past ${SUITE_TIMEOUT_MS / 1000} s: stopping it`);
  stopRunner();
}, SUITE_TIMEOUT_MS);

const code = await new Promise((resolve) => {
  runner.on('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
});
clearTimeout(suiteTimer);
await gateway.stop();
if (code !== 0) {
  const log = gateway.log().trim();
  if (log) console.error(`# gateway output (last 4000 characters):\n${log.slice(-4000)}`);
}
process.exit(code);
