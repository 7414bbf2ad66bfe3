// One connection per browser (`shared: true`): tabs of one browser context share one connection
// to the gateway through a leader tab. Counted on the gateway's side with /v1/presence: 8 SSE
// tabs hold ONE stream (without sharing, Chromium would open at most 6 to one host and the
// others would hang); every tab gets every event of its own topics, only those, exactly once
// and in order; closing the leader tab hands the connection over and loses nothing. The same
// for long polling. A tab whose topic the gateway refuses closes alone.

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
const freshTopic = (name) => lib.freshTopic(`shared.${name}`);

const snapshot = (page) => page.evaluate(() => window.snapshot());

/** `{total, by_transport}` of a topic, as the gateway counts its readers. */
async function presence(topic) {
  return lib.requestJson(gateway, `/v1/presence/${encodeURIComponent(topic)}`);
}

/**
 * Opens `count` tabs of the client fixture in one context and connects each with
 * `optionsFor(i)`; returns the context and the tabs.
 */
async function openTabs(count, optionsFor) {
  const context = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < count; i += 1) {
    const tab = await lib.openFixtureTab(context, gateway, 'client.html');
    await tab.evaluate((options) => window.start(options), optionsFor(i));
    tabs.push(tab);
  }
  return { context, tabs };
}

/** Waits until every tab is open with a role, and returns their states. */
async function waitAllOpen(tabs, timeout = 15_000) {
  return lib.waitUntil(
    async () => {
      const states = await Promise.all(tabs.map(snapshot));
      return states.every((s) => s.status === 'open' && s.role) && states;
    },
    { timeout, what: `${tabs.length} tabs open` },
  );
}

/** The tabs' (topic, n) sequences once each has `expected(i)`; throws with all of them otherwise. */
async function waitForSequences(tabs, expected, timeout = 15_000) {
  let seen = [];
  try {
    await lib.waitUntil(
      async () => {
        const states = await Promise.all(tabs.map(snapshot));
        seen = states.map((s) => s.events.map((e) => `${e.topic}#${e.data.n}`));
        return seen.every((sequence, i) => sequence.length >= expected(i).length);
      },
      { timeout, what: 'every tab has its events' },
    );
  } catch (error) {
    error.message += `\nseen: ${JSON.stringify(seen)}`;
    throw error;
  }
  return seen;
}

/** Waits until the gateway counts exactly one reader of `topic` (of `transport`), and says so. */
async function waitForOneReader(topic, transport, timeout = 10_000) {
  return lib.waitUntil(
    async () => {
      const count = await presence(topic);
      return count.total === 1 && count.by_transport[transport] === 1 && count;
    },
    { timeout, what: `one ${transport} reader of ${topic}` },
  );
}

describe('shared connection', () => {
  test('8 SSE tabs hold one stream; each gets its own topics once, in order; the leader closing loses nothing', async () => {
    const common = freshTopic('common');
    const side = freshTopic('side');
    // Even tabs follow `common`; odd tabs follow `common` and `side`.
    const topicsOf = (i) => (i % 2 === 0 ? [common] : [common, side]);
    const { context, tabs } = await openTabs(8, (i) => ({ transport: 'sse', topics: topicsOf(i), shared: true }));
    try {
      const states = await waitAllOpen(tabs);
      assert.equal(states.filter((s) => s.role === 'leader').length, 1, JSON.stringify(states.map((s) => s.role)));
      assert.ok(states.every((s) => s.transport === 'sse'));
      await waitForOneReader(common, 'sse');
      const sideCount = await presence(side);
      assert.deepEqual([sideCount.topic, sideCount.total, sideCount.by_transport], [side, 1, { sse: 1 }]);

      // Interleaved: common 1, side 1, common 2, side 2, …
      const published = [];
      for (let n = 1; n <= 5; n += 1) {
        for (const topic of [common, side]) {
          await lib.publish(gateway, topic, null, { n });
          published.push(`${topic}#${n}`);
        }
      }
      const expected = (i) => published.filter((entry) => topicsOf(i).some((topic) => entry.startsWith(`${topic}#`)));
      let seen = await waitForSequences(tabs, expected);
      seen.forEach((sequence, i) => assert.deepEqual(sequence, expected(i), `tab ${i}`));
      // Still one stream for eight tabs.
      await waitForOneReader(common, 'sse');

      // Close the leader's tab and publish during the hand-over: the others lose nothing.
      const leaderIndex = (await Promise.all(tabs.map(snapshot))).findIndex((s) => s.role === 'leader');
      await tabs[leaderIndex].close();
      const rest = tabs.filter((_, i) => i !== leaderIndex);
      const restTopics = tabs.map((_, i) => topicsOf(i)).filter((_, i) => i !== leaderIndex);
      for (let n = 6; n <= 10; n += 1) {
        for (const topic of [common, side]) {
          await lib.publish(gateway, topic, null, { n });
          published.push(`${topic}#${n}`);
        }
      }
      const expectedRest = (i) => published.filter((entry) => restTopics[i].some((topic) => entry.startsWith(`${topic}#`)));
      seen = await waitForSequences(rest, expectedRest);
      seen.forEach((sequence, i) => assert.deepEqual(sequence, expectedRest(i), `tab ${i} after the hand-over`));
      const after = await waitAllOpen(rest);
      assert.equal(after.filter((s) => s.role === 'leader').length, 1, 'one new leader');
      await waitForOneReader(common, 'sse');
      for (const tab of rest) assert.deepEqual(tab.problems, []);
    } finally {
      await context.close();
    }
  });

  test('a tab that joins late from `oldest` gets the history once, then live events, from the same stream', async () => {
    const topic = freshTopic('late');
    const { context, tabs } = await openTabs(2, () => ({ transport: 'sse', topics: [topic], shared: true }));
    try {
      await waitAllOpen(tabs);
      for (let n = 1; n <= 3; n += 1) await lib.publish(gateway, topic, null, { n });
      await waitForSequences(tabs, () => [1, 2, 3]);
      const late = await lib.openFixtureTab(context, gateway, 'client.html');
      await late.evaluate((options) => window.start(options), { transport: 'sse', topics: [topic], shared: true, cursor: 'oldest' });
      tabs.push(late);
      await waitAllOpen(tabs);
      for (let n = 4; n <= 5; n += 1) await lib.publish(gateway, topic, null, { n });
      const seen = await waitForSequences(tabs, () => [1, 2, 3, 4, 5]);
      for (const sequence of seen) assert.deepEqual(sequence, [1, 2, 3, 4, 5].map((n) => `${topic}#${n}`));
      assert.equal((await snapshot(late)).role, 'follower');
      await waitForOneReader(topic, 'sse');
    } finally {
      await context.close();
    }
  });

  test('long polling: one parked poll for 3 tabs, and the leader closing loses nothing', async () => {
    const topic = freshTopic('longpoll');
    const { context, tabs } = await openTabs(3, () => ({ transport: 'longpoll', topics: [topic], shared: true, timeout: 5 }));
    try {
      await waitAllOpen(tabs);
      await waitForOneReader(topic, 'longpoll');
      const published = [];
      for (let n = 1; n <= 4; n += 1) {
        await lib.publish(gateway, topic, null, { n });
        published.push(`${topic}#${n}`);
        // Never more than one poll of these tabs parked at once.
        assert.ok((await presence(topic)).total <= 1);
      }
      await waitForSequences(tabs, () => published);
      const leaderIndex = (await Promise.all(tabs.map(snapshot))).findIndex((s) => s.role === 'leader');
      await tabs[leaderIndex].close();
      const rest = tabs.filter((_, i) => i !== leaderIndex);
      for (let n = 5; n <= 8; n += 1) {
        await lib.publish(gateway, topic, null, { n });
        published.push(`${topic}#${n}`);
      }
      const seen = await waitForSequences(rest, () => published);
      for (const sequence of seen) assert.deepEqual(sequence, published);
      await waitForOneReader(topic, 'longpoll');
      const states = await Promise.all(rest.map(snapshot));
      assert.ok(states.every((s) => s.transport === 'longpoll'));
      // The followers made only their own few polls (joining); the leader made the long polls.
      const follower = states.find((s) => s.role === 'follower');
      assert.ok(follower && follower.stats.requests <= 3, JSON.stringify(states.map((s) => [s.role, s.stats])));
    } finally {
      await context.close();
    }
  });

  test('a tab whose topic the gateway refuses closes alone', async () => {
    const topic = freshTopic('good');
    const { context, tabs } = await openTabs(2, () => ({ transport: 'sse', topics: [topic], shared: true }));
    try {
      await waitAllOpen(tabs);
      const bad = await lib.openFixtureTab(context, gateway, 'client.html');
      await bad.evaluate((options) => window.start(options), { transport: 'sse', topics: ['bad topic'], shared: true });
      const closed = await lib.waitUntil(
        async () => {
          const s = await snapshot(bad);
          return s.status === 'closed' && s;
        },
        { what: 'the bad tab closed' },
      );
      assert.equal(closed.error?.code, 'invalid_topic');
      await lib.publish(gateway, topic, null, { n: 1 });
      await waitForSequences(tabs, () => [1]);
      const states = await Promise.all(tabs.map(snapshot));
      assert.ok(states.every((s) => s.status === 'open'));
      await waitForOneReader(topic, 'sse');
    } finally {
      await context.close();
    }
  });
});
