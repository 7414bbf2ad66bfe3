// The browser client (web/pushgate.js) against a gateway with auth on, on each transport: a
// `token` is sent, an expiring one is renewed through `refreshToken` without losing events (in-band
// on WebSocket, by reconnecting elsewhere), a missing token is a terminal `token_required`, and a
// disconnect by the server's API (`disconnected`) closes the connection without reconnecting.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as lib from './lib.mjs';

const SECRET = 'browser-test secret, long enough';
const ADMIN_KEY = 'browser-test admin key';

/** @type {import('./lib.mjs').Gateway} */
let gateway;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  gateway = await lib.startGateway({
    args: ['--jwt-secret', SECRET, '--admin-key', ADMIN_KEY, '--jwt-leeway', '0s'],
  });
  browser = await lib.launchBrowser();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

/** An HS256 token for `topics`, expiring `seconds` from now. */
function token(topics, seconds) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const claims = { exp: Math.floor(Date.now() / 1000) + seconds, sub: 'browser', subscribe: topics };
  const signed = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${signed}.${createHmac('sha256', SECRET).update(signed).digest('base64url')}`;
}

/** Publishes `{n}` to `topic` with the admin key. */
async function publish(topic, n) {
  const response = await fetch(`${gateway.url}/v1/publish/${encodeURIComponent(topic)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify({ data: { n } }),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(response.status, 200, await response.text());
}

/**
 * Opens the client fixture and connects with `options`; `fresh`, when given, is what
 * `refreshToken` returns.
 */
async function startClient(options, fresh) {
  const page = await lib.openFixture(browser, gateway, 'client.html');
  await page.waitForFunction(() => window.ready === true, null, { timeout: 5000 });
  await page.evaluate(
    ({ options, fresh }) => {
      if (fresh) {
        window.refreshed = 0;
        options.refreshToken = async () => {
          window.refreshed += 1;
          return fresh;
        };
      }
      return window.start(options);
    },
    { options, fresh },
  );
  return page;
}

const snapshot = (page) => page.evaluate(() => ({ ...window.snapshot(), refreshed: window.refreshed }));

for (const transport of lib.TRANSPORTS) {
  describe(`transport ${transport} with auth`, () => {
    test('renews an expiring token through refreshToken and misses no event', async () => {
      const topic = `auth.${transport}.${process.pid}`;
      const page = await startClient(
        // Six seconds: the client renews a WebSocket's token at the earliest 1 s after `authed`,
        // and a loaded machine can take a second or two to open the page and connect.
        { transport, topics: [topic], interval: 300, token: token([topic], 6) },
        token([topic], 600),
      );
      try {
        await lib.waitUntil(async () => (await snapshot(page)).status === 'open', { what: 'open' });
        await publish(topic, 1);
        // Past the first token's expiry (6 s) the connection is still there, with its renewed token.
        await lib.sleep(7500);
        await publish(topic, 2);
        const state = await lib.waitUntil(
          async () => {
            const s = await snapshot(page);
            return s.events.length >= 2 && s;
          },
          { timeout: 10_000, what: 'both events' },
        );
        assert.deepEqual(state.events.map((e) => e.data.n), [1, 2], 'each event once, in order');
        assert.equal(state.status, 'open');
        assert.ok(state.refreshed >= 1, 'refreshToken was asked');
        if (transport === 'ws') {
          // Renewed in-band, before it expired: the socket never dropped.
          assert.ok(!state.statuses.some((s) => s.status === 'reconnecting'), JSON.stringify(state.statuses));
        }
      } finally {
        await page.close();
      }
    });

    // A short poll holds no connection, so there is nothing of it to disconnect.
    if (transport !== 'poll') {
      test('a disconnect by the server closes the connection for good', async () => {
        const topic = `auth.disconnect.${transport}.${process.pid}`;
        const page = await startClient({ transport, topics: [topic], interval: 300, token: token([topic], 600) });
        try {
          await lib.waitUntil(async () => (await snapshot(page)).status === 'open', { what: 'open' });
          const response = await fetch(`${gateway.url}/v1/server/users/browser/disconnect`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${ADMIN_KEY}` },
            signal: AbortSignal.timeout(5000),
          });
          assert.equal(response.status, 200, await response.text());
          const state = await lib.waitUntil(
            async () => {
              const s = await snapshot(page);
              return s.status === 'closed' && s;
            },
            { timeout: 10_000, what: 'closed' },
          );
          assert.equal(state.error?.code, 'disconnected');
          // And it stays closed: no reconnection undoes the server's decision.
          await lib.sleep(2000);
          const later = await snapshot(page);
          assert.equal(later.status, 'closed');
          assert.ok(!later.statuses.some((s) => s.status === 'reconnecting'), JSON.stringify(later.statuses));
        } finally {
          await page.close();
        }
      });
    }

    test('without a token a protected topic is a terminal token_required', async () => {
      const page = await startClient({ transport, topics: [`auth.private.${transport}`], interval: 300 });
      try {
        const state = await lib.waitUntil(
          async () => {
            const s = await snapshot(page);
            return s.status === 'closed' && s;
          },
          { timeout: 10_000, what: 'closed' },
        );
        assert.equal(state.error?.code, 'token_required');
      } finally {
        await page.close();
      }
    });
  });
}
