// The chat room (web/chat.html) on each transport: join notices, a message sent from a second
// page arrives on the first within 2 s (short poll: its interval + 2 s) and the other way round,
// user text is shown as text, sending goes over the socket on WebSocket and through the publish
// API otherwise, presence counts the open connections, and leaving the page says so. Saves
// docs/images/chat.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as lib from './lib.mjs';

/** The short-poll interval the pages are opened with (`?interval=`). */
const POLL_INTERVAL_MS = 500;
/** The page asks for presence every 3 s. */
const PRESENCE_TIMEOUT_MS = 8000;

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

/** Opens the chat in `room`; with `nick`, the page joins by itself (`?nick=`). */
function openChat(transport, room, nick) {
  const query = { room, interval: String(POLL_INTERVAL_MS) };
  if (nick) query.nick = nick;
  return lib.openPage(browser, gateway, 'chat.html', { transport, query, waitForOpen: true });
}

/** The messages on a page, as "nick: text". */
async function messages(page) {
  return page.locator('[data-testid="chat-message"]').evaluateAll((items) =>
    items.map((item) => `${item.querySelector('.nick')?.textContent}: ${item.querySelector('.text')?.textContent}`),
  );
}

/** Waits until the page shows the message "nick: text". */
function waitForMessage(page, line, timeout) {
  return lib.waitUntil(async () => (await messages(page)).includes(line), { timeout, what: `message ${JSON.stringify(line)}` });
}

/** Waits until a notice contains `text`. */
function waitForNotice(page, text, timeout) {
  return lib.waitUntil(async () => (await lib.textsOf(page, 'chat-notice')).some((notice) => notice.includes(text)), {
    timeout,
    what: `notice ${JSON.stringify(text)}`,
  });
}

/** Types a message into the page's form and sends it. */
async function say(page, text) {
  await page.fill('[data-testid="message-input"]', text, { timeout: 2000 });
  await page.click('[data-testid="send"]', { timeout: 2000 });
}

for (const transport of lib.TRANSPORTS) {
  test(`${transport}: a message from a second page arrives on the first, and back`, { timeout: TEST_TIMEOUT_MS }, async () => {
    const bound = (transport === 'poll' ? POLL_INTERVAL_MS : 0) + 2000;
    const room = `test-${transport}-${process.pid}`;
    const alice = await openChat(transport, room);
    let bob;
    try {
      // Alice joins through the form, Bob through ?nick=.
      await alice.fill('[data-testid="nick"]', 'alice', { timeout: 2000 });
      await alice.click('[data-testid="join"]', { timeout: 2000 });
      await lib.waitForTestId(alice, 'me', 'you are alice');
      await waitForNotice(alice, 'alice joined', bound);
      bob = await openChat(transport, room, 'bob');
      await waitForNotice(alice, 'bob joined', bound);

      await say(bob, 'hi alice');
      await waitForMessage(alice, 'bob: hi alice', bound);
      await waitForMessage(bob, 'bob: hi alice', bound);
      // User text is text: no markup gets into the page.
      const markup = '<img src=x onerror="window.pwned=1"><b>bold?</b>';
      await say(alice, markup);
      await waitForMessage(bob, `alice: ${markup}`, bound);
      assert.equal(await bob.locator('[data-testid="chat-log"] img, [data-testid="chat-log"] b').count(), 0);
      assert.equal(await bob.evaluate(() => window.pwned), undefined);

      const path = await lib.waitForTestId(bob, 'send-path', /./);
      if (transport === 'ws') assert.equal(path, 'a publish frame on the WebSocket');
      else assert.equal(path, `POST /v1/publish/chat.${room}`);

      // Presence counts every reader, pollers too (they name their client).
      await lib.waitForTestId(alice, 'online', '2', { timeout: PRESENCE_TIMEOUT_MS });

      // Bob navigates away and sends nothing: the server notices his connection gone (a poller:
      // two intervals after his last poll) and tells alice, whose count follows. A short poll
      // gets no notices; its page reads the count again.
      await bob.goto('about:blank', { timeout: 5000 });
      if (transport !== 'poll') await waitForNotice(alice, 'left', PRESENCE_TIMEOUT_MS);
      await lib.waitForTestId(alice, 'online', '1', { timeout: PRESENCE_TIMEOUT_MS });

      assert.deepEqual(alice.problems, []);
    } finally {
      await alice.close();
      await bob?.close();
    }
  });
}

test('screenshot: docs/images/chat.png', { timeout: TEST_TIMEOUT_MS }, async () => {
  const room = 'lobby';
  const alice = await openChat('ws', room, 'alice');
  const bob = await openChat('sse', room, 'bob');
  const carol = await openChat('longpoll', room, 'carol');
  try {
    await alice.setViewportSize({ width: 1200, height: 800 });
    await say(bob, 'Morning! Is the deploy still on for 10:00?');
    await waitForMessage(alice, 'bob: Morning! Is the deploy still on for 10:00?', 2000);
    await say(alice, 'Yes, the release is tagged. Carol, can you watch the dashboards?');
    await waitForMessage(carol, 'alice: Yes, the release is tagged. Carol, can you watch the dashboards?', 2000);
    await say(carol, 'On it. Error rates are flat so far.');
    await waitForMessage(alice, 'carol: On it. Error rates are flat so far.', 2000);
    await say(bob, 'Great, I will post in #ops when it is out.');
    await waitForMessage(alice, 'bob: Great, I will post in #ops when it is out.', 2000);
    await alice.fill('[data-testid="message-input"]', 'Thanks both', { timeout: 2000 });
    await lib.waitForTestId(alice, 'online', '3', { timeout: PRESENCE_TIMEOUT_MS });
    await lib.screenshot(alice, 'chat');
  } finally {
    await carol.close();
    await bob.close();
    await alice.close();
  }
});
