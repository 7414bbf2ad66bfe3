// Helpers for the browser tests: the gateway, the browser, pages, bounded waits, screenshots.
//
// A test file gets the gateway that run.mjs started (env PUSHGATE_URL) with `sharedGateway()`,
// or its own with `startGateway()` (needed to restart it). Run alone, `sharedGateway()` starts
// one too, so `node --test web/tests/x.test.mjs` works after a build.
//
//   import { test, before, after } from 'node:test';
//   import * as lib from './lib.mjs';
//   let gateway, browser;
//   before(async () => { gateway = await lib.sharedGateway(); browser = await lib.launchBrowser(); });
//   after(async () => { await browser?.close(); await gateway?.stop(); });
//   test('x', async () => {
//     const page = await lib.openPage(browser, gateway, 'live-table.html', { transport: 'sse' });
//     await lib.waitForTestId(page, 'status', 'open');
//     await lib.publish(gateway, 'chat', 'message', { text: 'hi' });
//     await lib.screenshot(page, 'chat');
//   });

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const WEB_DIR = path.join(REPO, 'web');
export const IMAGES_DIR = path.join(REPO, 'docs/images');
export const TRANSPORTS = /** @type {const} */ (['poll', 'longpoll', 'sse', 'ws']);

/** Longest wait for the gateway to answer /healthz after it was started. */
const STARTUP_TIMEOUT_MS = 20_000;
/** Longest wait for the gateway to exit after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 15_000;

/** The gateway binary: PUSHGATE_BIN, else the debug build, else the release build. */
export function gatewayBinary() {
  if (process.env.PUSHGATE_BIN) return path.resolve(process.env.PUSHGATE_BIN);
  const target = path.resolve(REPO, process.env.CARGO_TARGET_DIR ?? 'target');
  const debug = path.join(target, 'debug/pushgate');
  const release = path.join(target, 'release/pushgate');
  return existsSync(debug) || !existsSync(release) ? debug : release;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

let webDirSupported;
/** Whether this binary has `serve --web-dir` (it serves web/ from disk, so tests see the files as they are). */
function supportsWebDir(binary) {
  if (webDirSupported === undefined) {
    const help = spawnSync(binary, ['serve', '--help'], { encoding: 'utf8' });
    webDirSupported = `${help.stdout}${help.stderr}`.includes('--web-dir');
    if (!webDirSupported) console.warn(`# ${binary} has no --web-dir: it serves the pages compiled into it`);
  }
  return webDirSupported;
}

/** Every gateway this process started, killed on exit whatever happens. */
const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const child of running) child.kill('SIGKILL');
    process.exit(130);
  });
}

/**
 * @typedef {object} Gateway
 * @property {string} url e.g. http://127.0.0.1:34567
 * @property {number} port
 * @property {string} dbPath the demo SQLite file
 * @property {() => string} log what the gateway printed so far
 * @property {() => Promise<void>} stop SIGTERM, then SIGKILL after 15 s; removes its temp dir
 * @property {(options?: {downMs?: number, whileDown?: () => Promise<void>|void}) => Promise<void>} restart
 *   stops it, waits `downMs` (default 0), runs `whileDown`, starts it again on the same port with the same db
 */

/**
 * Starts a gateway on a free 127.0.0.1 port with a temp demo db and `--web-dir web`.
 * @param {{args?: string[], env?: Record<string, string>}} [options] extra `serve` arguments and environment
 * @returns {Promise<Gateway>}
 */
export async function startGateway({ args = [], env = {} } = {}) {
  const binary = gatewayBinary();
  if (!existsSync(binary)) {
    throw new Error(`no gateway binary at ${binary}: build it (cargo build -p pushgate) or set PUSHGATE_BIN`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'pushgate-web-'));
  const dbPath = path.join(dir, 'demo.db');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const serveArgs = ['serve', '--listen', `127.0.0.1:${port}`, '--demo-db', dbPath];
  if (supportsWebDir(binary)) serveArgs.push('--web-dir', WEB_DIR);
  serveArgs.push(...args);
  let output = '';
  /** @type {import('node:child_process').ChildProcess|undefined} */
  let child;

  const launch = async () => {
    const proc = spawn(binary, serveArgs, {
      cwd: dir,
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    running.add(proc);
    const append = (chunk) => {
      output += chunk;
      if (output.length > 200_000) output = output.slice(-100_000);
    };
    proc.stdout.setEncoding('utf8').on('data', append);
    proc.stderr.setEncoding('utf8').on('data', append);
    proc.on('exit', () => running.delete(proc));
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`the gateway exited (${proc.exitCode}) at start:\n${output}`);
      try {
        const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    proc.kill('SIGKILL');
    throw new Error(`the gateway did not answer /healthz within ${STARTUP_TIMEOUT_MS} ms:\n${output}`);
  };

  const halt = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  await launch();
  return {
    url,
    port,
    dbPath,
    log: () => output,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart({ downMs = 0, whileDown } = {}) {
      await halt();
      if (downMs) await sleep(downMs);
      await whileDown?.();
      await launch();
    },
  };
}

/**
 * The gateway run.mjs started (PUSHGATE_URL; its `stop` does nothing and it cannot be
 * restarted), or a new one when the file runs alone.
 * @returns {Promise<Gateway>}
 */
export async function sharedGateway() {
  const url = process.env.PUSHGATE_URL;
  if (!url) return startGateway();
  return {
    url,
    port: Number(new URL(url).port),
    dbPath: process.env.PUSHGATE_DEMO_DB ?? '',
    log: () => '',
    stop: async () => {},
    restart: async () => {
      throw new Error('the shared gateway cannot be restarted: use startGateway()');
    },
  };
}

/** Headless Chromium from the system (/usr/bin/chromium, or CHROMIUM_PATH). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
    ],
    timeout: 30_000,
  });
}

/**
 * Opens `${gateway.url}/${file}?transport=…` in a new context (1280×800). The page's console
 * errors and uncaught exceptions are kept in `page.problems` (tests may assert it is empty).
 * @param {import('playwright-core').Browser} browser
 * @param {{url: string}} gateway
 * @param {string} file e.g. 'live-table.html'
 * @param {{transport?: string, query?: Record<string, string>, waitForOpen?: boolean}} [options]
 *   `waitForOpen`: also wait (10 s at most) for the status badge to read `open`
 * @returns {Promise<import('playwright-core').Page & {problems: string[]}>}
 */
export async function openPage(browser, gateway, file, { transport, query = {}, waitForOpen = false } = {}) {
  const page = await newPage(browser);
  const params = new URLSearchParams(query);
  if (transport) params.set('transport', transport);
  const search = params.toString() ? `?${params}` : '';
  await page.goto(`${gateway.url}/${file.replace(/^\//, '')}${search}`, { timeout: 15_000 });
  if (waitForOpen) await waitForTestId(page, 'status', 'open', { timeout: 10_000 });
  return page;
}

/**
 * Opens web/tests/fixtures/<file> in the gateway's origin (the gateway never serves web/tests/):
 * it navigates to the gateway's `/pushgate.js`, then replaces the document with the fixture, so
 * the fixture's scripts import `/pushgate.js` from the gateway. (A response made up by the test,
 * `route.fulfill`, would not do: Chromium's local-network-access checks then block the page's
 * WebSockets to 127.0.0.1.)
 * @param {import('playwright-core').Browser} browser
 * @param {{url: string}} gateway
 * @param {string} file e.g. 'client.html'
 * @returns {Promise<import('playwright-core').Page & {problems: string[]}>}
 */
export async function openFixture(browser, gateway, file) {
  const page = await newPage(browser);
  await page.goto(`${gateway.url}/pushgate.js`, { timeout: 15_000 });
  await page.setContent(readFileSync(path.join(REPO, 'web/tests/fixtures', file), 'utf8'), { timeout: 15_000 });
  return page;
}

/**
 * A new page in a new context (1280×800) that records console errors and uncaught exceptions in
 * `page.problems`; closing the page closes its context.
 * @param {import('playwright-core').Browser} browser
 * @returns {Promise<import('playwright-core').Page & {problems: string[]}>}
 */
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await tabIn(context);
  page.on('close', () => context.close().catch(() => {}));
  return page;
}

/**
 * A new page (a tab) in `context`, which tabs of one origin share like those of one browser
 * profile (BroadcastChannel, Web Locks); it records problems like `newPage`'s.
 * @param {import('playwright-core').BrowserContext} context
 * @returns {Promise<import('playwright-core').Page & {problems: string[]}>}
 */
export async function tabIn(context) {
  const page = /** @type {import('playwright-core').Page & {problems: string[]}} */ (await context.newPage());
  page.problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') page.problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => page.problems.push(`exception: ${error.message}`));
  return page;
}

/**
 * Opens web/tests/fixtures/<file> in the gateway's origin as a tab of `context` (see
 * `openFixture`), and waits for its script to be ready.
 * @param {import('playwright-core').BrowserContext} context
 * @param {{url: string}} gateway
 * @param {string} file e.g. 'client.html'
 */
export async function openFixtureTab(context, gateway, file) {
  const page = await tabIn(context);
  await page.goto(`${gateway.url}/pushgate.js`, { timeout: 15_000 });
  await page.setContent(readFileSync(path.join(REPO, 'web/tests/fixtures', file), 'utf8'), { timeout: 15_000 });
  await page.waitForFunction(() => window.ready === true, null, { timeout: 5000 });
  return page;
}

/**
 * Waits until the text of `[data-testid=<testid>]` (the first match) equals `expected`, matches
 * it (RegExp), or satisfies it (a function of the text, run in node, polled every 50 ms).
 * @param {import('playwright-core').Page} page
 * @param {string} testid
 * @param {string|RegExp|((text: string) => boolean)} expected
 * @param {{timeout?: number}} [options] default 5000 ms
 * @returns {Promise<string>} the text that matched
 */
export async function waitForTestId(page, testid, expected, { timeout = 5000 } = {}) {
  const locator = page.locator(`[data-testid="${testid}"]`).first();
  const matches = (text) =>
    typeof expected === 'string' ? text === expected : expected instanceof RegExp ? expected.test(text) : expected(text);
  const deadline = Date.now() + timeout;
  let text = '';
  for (;;) {
    text = ((await locator.textContent({ timeout: 1000 }).catch(() => null)) ?? '').trim();
    if (matches(text)) return text;
    if (Date.now() >= deadline) break;
    await sleep(50);
  }
  throw new Error(`[data-testid=${testid}] is ${JSON.stringify(text)} after ${timeout} ms; expected ${expected}`);
}

/**
 * Waits until `[data-testid=<testid>]` exists and is visible.
 * @param {import('playwright-core').Page} page
 * @param {string} testid
 * @param {{timeout?: number}} [options] default 5000 ms
 */
export async function waitForVisible(page, testid, { timeout = 5000 } = {}) {
  await page.locator(`[data-testid="${testid}"]`).first().waitFor({ state: 'visible', timeout });
}

/**
 * The texts of every `[data-testid=<testid>]` on the page.
 * @param {import('playwright-core').Page} page
 * @param {string} testid
 */
export async function textsOf(page, testid) {
  return page.locator(`[data-testid="${testid}"]`).allTextContents();
}

/**
 * The chrome's counters and status, as numbers and strings.
 * @param {import('playwright-core').Page} page
 */
export async function readChrome(page) {
  const text = async (id) => ((await page.locator(`[data-testid="${id}"]`).first().textContent({ timeout: 2000 })) ?? '').trim();
  return {
    status: await text('status'),
    transport: await text('transport'),
    requests: Number(await text('requests')),
    bytes: Number(await text('bytes')),
    messages: Number(await text('messages')),
  };
}

/**
 * Saves a screenshot of the page to docs/images/<name>.png.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function screenshot(page, name) {
  mkdirSync(IMAGES_DIR, { recursive: true });
  const file = path.join(IMAGES_DIR, `${name}.png`);
  await page.screenshot({ path: file, timeout: 10_000 });
  return file;
}

/**
 * Publishes from node over HTTP; throws on an error answer.
 * @param {{url: string}} gateway
 * @param {string} topic
 * @param {string|null} event
 * @param {unknown} data
 * @returns {Promise<{topic: string, seq: number, id: string}>}
 */
export async function publish(gateway, topic, event, data) {
  const body = event ? { event, data } : { data };
  const response = await fetch(`${gateway.url}/v1/publish/${encodeURIComponent(topic)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`publish to ${topic}: HTTP ${response.status} ${text}`);
  return JSON.parse(text);
}

/**
 * A JSON request to the gateway (the demo REST API, presence…); throws on an error answer.
 * @param {{url: string}} gateway
 * @param {string} pathAndQuery e.g. '/demo/users'
 * @param {{method?: string, body?: unknown}} [options]
 */
export async function requestJson(gateway, pathAndQuery, { method = 'GET', body } = {}) {
  const response = await fetch(`${gateway.url}${pathAndQuery}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${pathAndQuery}: HTTP ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

let topicCounter = 0;
/**
 * A topic no other test uses: `<prefix>.<pid>.<n>`.
 * @param {string} prefix
 */
export function freshTopic(prefix) {
  topicCounter += 1;
  return `${prefix}.${process.pid}.${topicCounter}`;
}

/**
 * Polls `check` (every 50 ms) until it returns a truthy value, which is returned; throws after
 * `timeout` ms with `what` in the message.
 * @template T
 * @param {() => Promise<T>|T} check
 * @param {{timeout?: number, what?: string}} [options] default 5000 ms
 * @returns {Promise<T>}
 */
export async function waitUntil(check, { timeout = 5000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) throw new Error(`${what} not met within ${timeout} ms (last: ${last})`);
    await sleep(50);
  }
}

export { sleep };
