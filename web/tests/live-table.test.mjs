// The live table (web/live-table.html) on each transport: a row inserted through the REST API
// appears within 2 s (short poll: its interval + 2 s), and an edit and a delete made in another
// page show up as fast. Then a gateway restart: pages on all four transports see the reset, load
// a fresh snapshot and miss no row, neither the one inserted the moment the gateway was back
// (before the pages reconnected) nor the ones after. Saves docs/images/live-table.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as lib from './lib.mjs';

/** The short-poll interval the pages are opened with (`?interval=`). */
const POLL_INTERVAL_MS = 500;
/** Longest wait for a page to be back after its gateway restarted (backoff is random, up to 8 s by then). */
const RESTART_TIMEOUT_MS = 20_000;

const PEOPLE = [
  ['Ada Lovelace', 'ada@example.com'],
  ['Grace Hopper', 'grace@example.com'],
  ['Alan Turing', 'alan@example.com'],
  ['Katherine Johnson', 'katherine@example.com'],
  ['Edsger Dijkstra', 'edsger@example.com'],
  ['Barbara Liskov', 'barbara@example.com'],
  ['Donald Knuth', 'don@example.com'],
  ['Margaret Hamilton', 'margaret@example.com'],
  ['Claude Shannon', 'claude@example.com'],
  ['Frances Allen', 'fran@example.com'],
];
let personCounter = 0;
/** A realistic user row to insert (they end up in the screenshot). */
function nextPerson() {
  const [name, email] = PEOPLE[personCounter % PEOPLE.length];
  personCounter += 1;
  return { name, email };
}

/** Each test stops and fails after this long, whatever it waits for. */
const TEST_TIMEOUT_MS = 60_000;

/** @type {import('./lib.mjs').Gateway} */
let gateway;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  gateway = await lib.sharedGateway();
  browser = await lib.launchBrowser();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

/** Opens the live table and waits for its connection to be open. */
function openTable(on, transport) {
  return lib.openPage(browser, on, 'live-table.html', {
    transport,
    query: { interval: String(POLL_INTERVAL_MS) },
    waitForOpen: true,
  });
}

/** The text of row `id`'s `field` cell, or null when the row is not on the page. */
async function cell(page, id, field) {
  const locator = page.locator(`[data-testid="row-${id}"] [data-field="${field}"]`);
  if ((await locator.count()) === 0) return null;
  return ((await locator.first().textContent({ timeout: 1000 })) ?? '').trim();
}

/** Waits until row `id` shows `name` (or, with `name` null, until the row is gone). */
async function waitForRow(page, id, name, timeout) {
  return lib.waitUntil(async () => (await cell(page, id, 'name')) === name, {
    timeout,
    what: name === null ? `row ${id} gone` : `row ${id} showing ${JSON.stringify(name)}`,
  });
}

for (const transport of lib.TRANSPORTS) {
  test(`${transport}: an insert through the API, and an edit and a delete in another page, show up`, { timeout: TEST_TIMEOUT_MS }, async () => {
    const bound = (transport === 'poll' ? POLL_INTERVAL_MS : 0) + 2000;
    const watcher = await openTable(gateway, transport);
    const editor = await openTable(gateway, transport);
    try {
      const person = nextPerson();
      const row = await lib.requestJson(gateway, '/demo/users', { method: 'POST', body: person });
      await waitForRow(watcher, row.id, person.name, bound);
      await waitForRow(editor, row.id, person.name, bound);

      // Edit in the other page, through its form.
      const renamed = person.name.replace(/^(\S)\S* /, '$1. ');
      await editor.click(`[data-testid="edit-${row.id}"]`, { timeout: 2000 });
      await editor.fill(`[data-testid="edit-name-${row.id}"]`, renamed, { timeout: 2000 });
      await editor.click(`[data-testid="save-${row.id}"]`, { timeout: 2000 });
      await waitForRow(watcher, row.id, renamed, bound);
      await waitForRow(editor, row.id, renamed, bound);

      // A second row, deleted from the other page.
      const doomed = await lib.requestJson(gateway, '/demo/users', { method: 'POST', body: nextPerson() });
      await waitForRow(editor, doomed.id, doomed.name, bound);
      await editor.click(`[data-testid="delete-${doomed.id}"]`, { timeout: 2000 });
      await waitForRow(watcher, doomed.id, null, bound);
      await waitForRow(editor, doomed.id, null, bound);

      const chrome = await lib.readChrome(watcher);
      assert.equal(chrome.status, 'open');
      assert.ok(chrome.messages >= 4, `the watcher counted its events (${chrome.messages})`);
      assert.deepEqual(watcher.problems, []);
      assert.deepEqual(editor.problems, []);
    } finally {
      await watcher.close();
      await editor.close();
    }
  });
}

test('a page whose gateway restarts misses no row (all four transports)', { timeout: TEST_TIMEOUT_MS }, async () => {
  const own = await lib.startGateway();
  const pages = [];
  try {
    const first = await lib.requestJson(own, '/demo/users', { method: 'POST', body: nextPerson() });
    for (const transport of lib.TRANSPORTS) pages.push(await openTable(own, transport));
    for (const page of pages) await waitForRow(page, first.id, first.name, 2000 + POLL_INTERVAL_MS);

    await own.restart();
    // At once, before the pages are back (their retries wait a random backoff). The gateway
    // keeps its epoch across the restart (the state file beside the demo database) and reads
    // the changes its memory lost back from the outbox, so the pages resume from their cursors
    // without a reset, and nothing is missed either way.
    const during = await lib.requestJson(own, '/demo/users', { method: 'POST', body: nextPerson() });
    for (const page of pages) {
      await lib.waitForTestId(page, 'status', 'open', { timeout: RESTART_TIMEOUT_MS });
    }
    const later = await lib.requestJson(own, '/demo/users', { method: 'POST', body: nextPerson() });
    for (const [index, page] of pages.entries()) {
      const transport = lib.TRANSPORTS[index];
      for (const row of [first, during, later]) {
        await waitForRow(page, row.id, row.name, 2000 + POLL_INTERVAL_MS).catch((error) => {
          throw new Error(`${transport}: ${error.message}`);
        });
      }
      // The browser logs each refused connection while the gateway is down; exceptions are the page's.
      assert.deepEqual(page.problems.filter((problem) => problem.startsWith('exception')), [], `${transport}: no exceptions`);
    }
  } finally {
    for (const page of pages) await page.close();
    await own.stop();
  }
});

test('screenshot: docs/images/live-table.png', { timeout: TEST_TIMEOUT_MS }, async () => {
  const page = await openTable(gateway, 'ws');
  try {
    await page.setViewportSize({ width: 1200, height: 800 });
    // A realistic table: a few people, one of them edited and one deleted while the page watches.
    const rows = [];
    for (let i = 0; i < 3; i += 1) rows.push(await lib.requestJson(gateway, '/demo/users', { method: 'POST', body: nextPerson() }));
    await lib.requestJson(gateway, `/demo/users/${rows[0].id}`, { method: 'PUT', body: { active: false } });
    await lib.requestJson(gateway, `/demo/users/${rows[1].id}`, { method: 'DELETE' });
    await waitForRow(page, rows[1].id, null, 2000);
    await lib.waitUntil(async () => (await cell(page, rows[0].id, 'active')) === 'no', { timeout: 2000, what: 'the edit shown' });
    await page.fill('[data-testid="new-name"]', 'Hedy Lamarr', { timeout: 2000 });
    await page.fill('[data-testid="new-email"]', 'hedy@example.com', { timeout: 2000 });
    await lib.sleep(1300); // the flash of the last change fades
    await lib.screenshot(page, 'live-table');
  } finally {
    await page.close();
  }
});
