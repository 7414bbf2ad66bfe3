// The browser client as an npm package (web/client): `npm pack` makes a tarball with the sources
// and generated type declarations and nothing else; installed into a fresh folder it imports
// from Node.js, connects to a real gateway (long polling: Node.js 20 has neither WebSocket nor
// EventSource, so `auto` picks it) and receives what is published; and a TypeScript program
// using it type-checks against its declarations (and a wrong option does not). Needs
// `npm ci --prefix web/client` (TypeScript, for the declarations).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as lib from './lib.mjs';

const CLIENT_DIR = path.join(lib.REPO, 'web/client');
const TSC = path.join(CLIENT_DIR, 'node_modules/typescript/bin/tsc');

/** @type {import('./lib.mjs').Gateway} */
let gateway;
let work;
let tarball;

before(async () => {
  if (!existsSync(TSC)) throw new Error(`no TypeScript at ${TSC}: run npm ci --prefix web/client`);
  gateway = await lib.sharedGateway();
  work = mkdtempSync(path.join(tmpdir(), 'pushgate-package-'));
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: CLIENT_DIR, encoding: 'utf8', timeout: 120_000 }),
  );
  tarball = path.join(work, packed[0].filename);
});

after(async () => {
  await gateway?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs `command args` in `cwd`, returning its output; a failure shows what it printed. */
function run(command, args, cwd) {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    throw new Error(`${command} ${args.join(' ')} failed:\n${error.stdout}\n${error.stderr}`);
  }
}

test('the tarball holds the sources, the declarations, the README and package.json only', () => {
  const files = run('tar', ['-tzf', tarball], work).trim().split('\n').sort();
  for (const file of ['package/package.json', 'package/README.md', 'package/src/index.js', 'package/src/shared.js', 'package/types/index.d.ts']) {
    assert.ok(files.includes(file), `${file} in ${files.join(', ')}`);
  }
  const outside = files.filter((file) => !/^package\/(package\.json|README\.md|src\/[a-z]+\.js|types\/[a-z]+\.d\.ts)$/.test(file));
  assert.deepEqual(outside, []);
});

test('installed into a fresh folder, Node.js imports it and receives events from a gateway', async () => {
  const app = path.join(work, 'node-app');
  run('mkdir', ['-p', app], work);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], app);
  assert.deepEqual(readdirSync(path.join(app, 'node_modules/@pushgate/client')).sort(), ['README.md', 'package.json', 'src', 'types']);
  const topic = `package.${process.pid}`;
  const script = `
    import * as client from '@pushgate/client';
    const names = ['connect', 'publish', 'Connection', 'PushgateError'].filter((name) => typeof client[name] !== 'function');
    if (names.length) throw new Error('missing exports: ' + names);
    const url = process.argv[1];
    const topic = process.argv[2];
    const connection = client.connect({ url, topics: [topic], timeout: 5 });
    const received = new Promise((resolve, reject) => {
      connection.addEventListener('event', (e) => resolve(e.detail));
      connection.addEventListener('status', (e) => { if (e.detail.status === 'closed') reject(new Error(JSON.stringify(e.detail))); });
    });
    await new Promise((resolve) => connection.addEventListener('status', (e) => e.detail.status === 'open' && resolve()));
    await client.publish(topic, 'note', { n: 1 }, { url });
    const event = await received;
    connection.close();
    console.log(JSON.stringify({ transport: connection.transport, event }));
  `;
  const output = run(process.execPath, ['--input-type=module', '-e', script, gateway.url, topic], app);
  const { transport, event } = JSON.parse(output.trim().split('\n').at(-1));
  assert.equal(transport, 'longpoll');
  assert.equal(event.topic, topic);
  assert.equal(event.event, 'note');
  assert.deepEqual(event.data, { n: 1 });
});

test('TypeScript programs type-check against its declarations', () => {
  const app = path.join(work, 'ts-app');
  run('mkdir', ['-p', app], work);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'ts-app', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], app);
  writeFileSync(
    path.join(app, 'main.ts'),
    `import { connect, publish, PushgateError, type EventObject, type Options } from '@pushgate/client';
const options: Options = { url: 'http://127.0.0.1:8080', topics: ['chat'], transport: 'sse', shared: true };
const connection = connect(options);
connection.addEventListener('event', (e) => {
  const event: EventObject = e.detail;
  const seq: number = event.seq;
  console.log(seq, event.topic.toUpperCase());
});
connection.addEventListener('status', (e) => console.log(e.detail.status, e.detail.error?.code));
connection.addEventListener('cursor', (e) => localStorage.setItem('cursor', e.detail));
const published: Promise<{ topic: string; seq: number; id: string }> = connection.publish('chat', null, { text: 'hi' });
void published;
void publish('chat', 'message', 1, { url: 'http://127.0.0.1:8080' });
const error = new PushgateError('invalid_topic', 'bad', 400);
const terminal: boolean = error.terminal;
void terminal;
// @ts-expect-error: not a transport
connect({ topics: ['chat'], transport: 'carrier-pigeon' });
// @ts-expect-error: topics are required
connect({ url: 'http://127.0.0.1:8080' });
`,
  );
  writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], types: [] },
      files: ['main.ts'],
    }),
  );
  run(process.execPath, [TSC, '-p', app], app);
});
