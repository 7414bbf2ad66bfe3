// The browser client (web/pushgate.js) in headless Chromium, on each transport: delivery,
// publishing, resuming across a gateway restart (with the reset surfaced), terminal errors,
// and `auto`'s choice and fallbacks.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as lib from './lib.mjs';

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

/** A topic no other test uses. */
const freshTopic = (name) => lib.freshTopic(`client.${name}`);

/**
 * Opens the fixture page and starts a connection in it.
 * @param {{url: string}} on the gateway
 * @param {object} options connect() options (`url` defaults to the page's origin)
 */
async function startClient(on, options) {
  const page = await lib.openFixture(browser, on, 'client.html');
  await page.waitForFunction(() => window.ready === true, null, { timeout: 5000 });
  await page.evaluate((opts) => window.start(opts), options);
  return page;
}

/** What the page recorded: events, resets, statuses, errors, status, transport, cursor, stats. */
async function snapshot(page) {
  return page.evaluate(() => window.snapshot());
}

/** Waits until the connection's status is `status`. */
async function waitForStatus(page, status, timeout = 10_000) {
  return lib.waitUntil(
    async () => {
      const state = await snapshot(page);
      return state.status === status && state;
    },
    { timeout, what: `status ${status}` },
  );
}

/** Waits until the page received events with these `data.n`, in order, and returns the state. */
async function waitForEvents(page, numbers, timeout) {
  let state;
  try {
    return await lib.waitUntil(
      async () => {
        state = await snapshot(page);
        const seen = state.events.map((event) => event.data?.n);
        return numbers.every((n) => seen.includes(n)) && state;
      },
      { timeout, what: `events ${numbers.join(', ')}` },
    );
  } catch (error) {
    error.message += `\nstate: ${JSON.stringify({ ...state, events: state?.events.map((e) => [e.seq, e.data]) })}`;
    throw error;
  }
}

for (const transport of lib.TRANSPORTS) {
  // Short poll delivers within one interval; the others at once. 2 s of slack for everyone.
  const interval = 500;
  const deliveryTimeout = (transport === 'poll' ? interval : 0) + 2000;

  describe(`transport ${transport}`, () => {
    test('receives an event published over HTTP, as the event object', async () => {
      const topic = freshTopic(transport);
      const page = await startClient(gateway, { transport, topics: [topic], interval });
      try {
        await waitForStatus(page, 'open');
        const published = await lib.publish(gateway, topic, 'message', { n: 1, text: 'hi' });
        const state = await waitForEvents(page, [1], deliveryTimeout);
        const [event] = state.events;
        assert.deepEqual(Object.keys(event).sort(), ['data', 'event', 'id', 'seq', 'topic', 'ts']);
        assert.equal(event.topic, topic);
        assert.equal(event.seq, published.seq);
        assert.equal(event.id, published.id);
        assert.equal(event.event, 'message');
        assert.deepEqual(event.data, { n: 1, text: 'hi' });
        assert.equal(typeof event.ts, 'number');
        // SSE and WebSocket stand on the last event; a poll's cursor may be further on (other topics).
        if (transport === 'sse' || transport === 'ws') assert.equal(state.cursor, published.id);
        else assert.match(state.cursor, /^[0-9a-f]+-[0-9a-f]+$/);
        assert.equal(state.transport, transport);
        assert.ok(state.stats.requests >= 1, 'requests counted');
        assert.ok(state.stats.bytes > 0, 'bytes counted');
        assert.equal(state.stats.messages, 1);
        assert.deepEqual(page.problems, []);
      } finally {
        await page.close();
      }
    });

    test('publishes through the connection and receives its own event in order', async () => {
      const topic = freshTopic(`${transport}-pub`);
      const page = await startClient(gateway, { transport, topics: [topic], interval });
      try {
        await waitForStatus(page, 'open');
        const answers = await page.evaluate(async (t) => {
          const results = [];
          for (let n = 1; n <= 3; n += 1) results.push(await window.conn.publish(t, 'note', { n }));
          return results;
        }, topic);
        assert.deepEqual(answers.map((a) => a.seq), [1, 2, 3]);
        const state = await waitForEvents(page, [1, 2, 3], deliveryTimeout);
        assert.deepEqual(state.events.map((e) => [e.seq, e.event]), [[1, 'note'], [2, 'note'], [3, 'note']]);
      } finally {
        await page.close();
      }
    });

    test('resumes after a gateway restart without missing events, and surfaces the lost history as a reset', async () => {
      const own = await lib.startGateway();
      const topic = freshTopic(`${transport}-restart`);
      const page = await startClient(own, { transport, topics: [topic], interval });
      try {
        await waitForStatus(page, 'open');
        await lib.publish(own, topic, null, { n: 1 });
        await waitForEvents(page, [1], deliveryTimeout);
        await own.restart();
        // Published before the page is back (its retry waits a random backoff): it must not miss them.
        await lib.publish(own, topic, null, { n: 2 });
        await lib.publish(own, topic, null, { n: 3 });
        const state = await waitForEvents(page, [2, 3], 15_000);
        assert.equal(state.status, 'open');
        assert.deepEqual(state.events.map((e) => e.data.n), [1, 2, 3], 'each event exactly once, in order');
        assert.ok(state.resets.length >= 1, 'the reset is surfaced');
        // The node keeps its epoch across the restart (its state file beside the demo database),
        // so the published topic's history, which lived in memory, is gone from the same epoch:
        // an `expired` reset naming the topic, not a new epoch.
        assert.equal(state.resets[0].reason, 'expired');
        assert.ok(state.resets[0].topics.some((entry) => entry.topic === topic));
        if (transport === 'sse' || transport === 'ws') {
          // The polls may not even notice: the restart can fall between two requests (a parked
          // long poll is answered at shutdown).
          assert.ok(state.statuses.some((s) => s.status === 'reconnecting'), 'it went through reconnecting');
        }
        // And it keeps going on the new server.
        await lib.publish(own, topic, null, { n: 4 });
        await waitForEvents(page, [4], deliveryTimeout);
      } finally {
        await page.close();
        await own.stop();
      }
    });

    test('a bad topic (400 invalid_topic) is terminal', async () => {
      const page = await startClient(gateway, { transport, topics: ['bad topic'], interval });
      try {
        const state = await waitForStatus(page, 'closed');
        assert.equal(state.error?.code, 'invalid_topic');
        const closed = state.statuses.at(-1);
        assert.equal(closed.status, 'closed');
        assert.equal(closed.error?.code, 'invalid_topic');
        // No retries after a terminal error.
        await lib.sleep(1500);
        const later = await snapshot(page);
        assert.equal(later.stats.requests, state.stats.requests);
        assert.ok(!later.statuses.some((s) => s.status === 'reconnecting'));
      } finally {
        await page.close();
      }
    });
  });
}

describe('SSE event types', () => {
  test('an event of a type nobody listed is fetched when the gap shows, in order', async () => {
    const topic = freshTopic('sse-types');
    const page = await startClient(gateway, { transport: 'sse', topics: [topic] });
    try {
      await waitForStatus(page, 'open');
      await lib.publish(gateway, topic, null, { n: 1 });
      await waitForEvents(page, [1], 2000);
      await lib.publish(gateway, topic, 'unlisted', { n: 2 });
      await lib.publish(gateway, topic, null, { n: 3 });
      const state = await waitForEvents(page, [2, 3], 3000);
      assert.deepEqual(state.events.map((e) => [e.seq, e.event]), [[1, 'message'], [2, 'unlisted'], [3, 'message']]);
      // Learned: the next one of that type arrives by itself.
      await lib.publish(gateway, topic, 'unlisted', { n: 4 });
      await waitForEvents(page, [4], 2000);
    } finally {
      await page.close();
    }
  });

  test('types listed in `events` arrive at once', async () => {
    const topic = freshTopic('sse-listed');
    const page = await startClient(gateway, { transport: 'sse', topics: [topic], events: ['insert'] });
    try {
      await waitForStatus(page, 'open');
      await lib.publish(gateway, topic, 'insert', { n: 1 });
      const state = await waitForEvents(page, [1], 2000);
      assert.equal(state.events[0].event, 'insert');
    } finally {
      await page.close();
    }
  });
});

describe('auto', () => {
  test('picks WebSocket when it works', async () => {
    const topic = freshTopic('auto');
    const page = await startClient(gateway, { transport: 'auto', topics: [topic] });
    try {
      const state = await waitForStatus(page, 'open');
      assert.equal(state.transport, 'ws');
      await lib.publish(gateway, topic, null, { n: 1 });
      await waitForEvents(page, [1], 2000);
    } finally {
      await page.close();
    }
  });

  test('falls back to SSE when the WebSocket opens but never acknowledges', async () => {
    const topic = freshTopic('auto-sse');
    const page = await lib.openFixture(browser, gateway, 'client.html');
    try {
      // A socket that opens and then says nothing, like a proxy that accepts the upgrade and drops frames.
      await page.routeWebSocket(/\/v1\/ws/, () => {});
      await page.waitForFunction(() => window.ready === true, null, { timeout: 5000 });
      await page.evaluate((opts) => window.start(opts), { transport: 'auto', topics: [topic] });
      const state = await waitForStatus(page, 'open', 12_000);
      assert.equal(state.transport, 'sse');
      await lib.publish(gateway, topic, null, { n: 1 });
      await waitForEvents(page, [1], 2000);
    } finally {
      await page.close();
    }
  });

  test('falls back to long polling when neither WebSocket nor SSE delivers', async () => {
    const topic = freshTopic('auto-longpoll');
    const page = await lib.openFixture(browser, gateway, 'client.html');
    try {
      await page.routeWebSocket(/\/v1\/ws/, (ws) => ws.close({ code: 1006 }).catch(() => {}));
      // A stream that opens and ends without a message, as through a proxy that breaks streaming.
      await page.route(/\/v1\/sse/, (route) =>
        route.fulfill({ status: 200, headers: { 'content-type': 'text/event-stream' }, body: 'retry: 2000\n\n' }),
      );
      await page.waitForFunction(() => window.ready === true, null, { timeout: 5000 });
      await page.evaluate((opts) => window.start(opts), { transport: 'auto', topics: [topic] });
      const state = await waitForStatus(page, 'open', 15_000);
      assert.equal(state.transport, 'longpoll');
      await lib.publish(gateway, topic, null, { n: 1 });
      await waitForEvents(page, [1], 3000);
    } finally {
      await page.close();
    }
  });
});

describe('index page', () => {
  test('links every demo and explains the transports', async () => {
    const page = await lib.openPage(browser, gateway, '');
    try {
      for (const demo of ['live-table', 'chat', 'orders', 'dashboard', 'arena']) {
        const href = await page.locator(`[data-testid="link-${demo}"]`).getAttribute('href', { timeout: 2000 });
        assert.equal(href, `${demo}.html`);
      }
      const headings = await page.locator('[data-testid="tradeoffs"] thead th').allTextContents();
      assert.deepEqual(headings.slice(1), ['Short poll', 'Long poll', 'Server-Sent Events', 'WebSocket']);
      await lib.screenshot(page, 'index');
      assert.deepEqual(page.problems, []);
    } finally {
      await page.close();
    }
  });

  test('has an icon, served by the gateway (the page links the SVG; /favicon.ico is there for those that ask)', async () => {
    const page = await lib.openPage(browser, gateway, '');
    try {
      const href = await page.locator('link[rel="icon"]').getAttribute('href', { timeout: 2000 });
      for (const [file, type] of [[href, 'image/svg+xml'], ['favicon.ico', 'image/x-icon']]) {
        const response = await fetch(new URL(file, `${gateway.url}/`), { signal: AbortSignal.timeout(5000) });
        assert.equal(response.status, 200, file);
        assert.equal(response.headers.get('content-type'), type, file);
        assert.ok((await response.arrayBuffer()).byteLength > 100, `${file} has content`);
      }
    } finally {
      await page.close();
    }
  });
});
