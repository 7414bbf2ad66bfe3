// @ts-check
/**
 * The chat room: one topic `chat.<room>` (`?room=`, default `lobby`) carrying `message`
 * (`{nick, text}`), `join` and `leave` (`{nick}`) events. Messages are shown when they come back
 * through the subscription, so every page shows the same order. Who is online comes from the
 * server: `GET /v1/presence/<topic>` once the connection opens, then its join and leave notices
 * (the `presence` option), which also tell when a tab that closed or crashed is gone. A short
 * poll gets no notices, so on it the count is read again every few seconds.
 *
 * `?nick=` joins at once with that nickname. Tests read `chat-message` (with `.nick` and `.text`),
 * `chat-notice`, `online`, `send-path`, `me`, and act through `nick`, `join`, `leave`,
 * `message-input`, `send`.
 * @module chat
 */

import { connect } from './pushgate.js';
import { element, mountDemoChrome, sharedFromQuery, transportFromQuery } from './demo.js';
import { clock, intervalFromQuery } from './snapshot.js';

/** How often a short-polling page reads the count (it gets no join and leave notices). */
const PRESENCE_EVERY_MS = 3000;
/** Messages kept on the page. */
const LOG_LENGTH = 500;
const TOPIC_PART = /^[A-Za-z0-9_.:-]{1,100}$/;

const params = new URLSearchParams(location.search);
const requestedRoom = params.get('room') ?? '';
const room = TOPIC_PART.test(requestedRoom) ? requestedRoom : 'lobby';
const topic = `chat.${room}`;

const log = /** @type {HTMLUListElement} */ (document.querySelector('[data-testid="chat-log"]'));
const joinForm = /** @type {HTMLFormElement} */ (document.querySelector('#join'));
const nickInput = /** @type {HTMLInputElement} */ (document.querySelector('[data-testid="nick"]'));
const joinButton = /** @type {HTMLButtonElement} */ (document.querySelector('[data-testid="join"]'));
const leaveButton = /** @type {HTMLButtonElement} */ (document.querySelector('[data-testid="leave"]'));
const me = /** @type {HTMLElement} */ (document.querySelector('[data-testid="me"]'));
const compose = /** @type {HTMLFormElement} */ (document.querySelector('#compose'));
const messageInput = /** @type {HTMLInputElement} */ (document.querySelector('[data-testid="message-input"]'));
const sendButton = /** @type {HTMLButtonElement} */ (document.querySelector('[data-testid="send"]'));
const sendPath = /** @type {HTMLElement} */ (document.querySelector('[data-testid="send-path"]'));
const formError = /** @type {HTMLElement} */ (document.querySelector('[data-testid="form-error"]'));
const online = /** @type {HTMLElement} */ (document.querySelector('[data-testid="online"]'));
const onlineDetail = /** @type {HTMLElement} */ (document.querySelector('[data-testid="online-detail"]'));

/** @type {HTMLElement} */ (document.querySelector('[data-testid="room"]')).textContent = room;
/** @type {HTMLElement} */ (document.querySelector('[data-testid="topic"]')).textContent = topic;

/** The nickname once joined. */
let nick = '';

const connection = connect({
  topics: [topic],
  transport: transportFromQuery(),
  interval: intervalFromQuery(),
  events: ['message', 'join', 'leave'],
  shared: sharedFromQuery(),
  presence: true,
});
mountDemoChrome(/** @type {Element} */ (document.querySelector('#chrome')), connection);

connection.addEventListener('event', (event) => show(/** @type {CustomEvent<import('./pushgate.js').EventObject>} */ (event).detail));
connection.addEventListener('reset', () => {
  // History was lost (the gateway restarted): messages may be missing from here on up.
  append(element('li', { class: 'notice', 'data-testid': 'chat-notice' }, 'Some messages were lost while the connection was down.'));
});
connection.addEventListener('status', showSendPath);
connection.addEventListener('presence', (event) => showPresence(/** @type {CustomEvent<import('./pushgate.js').PresenceNotice>} */ (event).detail));
// Notices missed while the connection was down are not replayed: read the count on each open.
connection.addEventListener('status', () => {
  if (connection.status === 'open') readPresence();
});
showSendPath();

/** Where a message goes: the socket when WebSocket is open, else `POST /v1/publish`. */
function showSendPath() {
  sendPath.textContent =
    connection.transport === 'ws' && connection.status === 'open'
      ? 'a publish frame on the WebSocket'
      : `POST /v1/publish/${topic}`;
}

/**
 * One event of the room, shown with textContent only: nicknames and messages are anyone's text.
 * @param {import('./pushgate.js').EventObject} event
 */
function show(event) {
  const data = event.data && typeof event.data === 'object' ? event.data : {};
  const who = typeof data.nick === 'string' && data.nick !== '' ? data.nick : 'someone';
  const time = element('span', { class: 'time' }, clock(event.ts));
  if (event.event === 'join' || event.event === 'leave') {
    const verb = event.event === 'join' ? 'joined' : 'left';
    append(element('li', { class: 'notice', 'data-testid': 'chat-notice', 'data-kind': event.event }, time, `${who} ${verb} the room`));
    return;
  }
  if (event.event !== 'message') return;
  const text = typeof data.text === 'string' ? data.text : JSON.stringify(event.data);
  const item = element(
    'li',
    { 'data-testid': 'chat-message', class: nick !== '' && who === nick ? 'mine' : '' },
    time,
    element('span', { class: 'nick' }, who),
    element('span', { class: 'text' }, text),
  );
  append(item);
}

/** @param {HTMLLIElement} item */
function append(item) {
  log.querySelector('li.empty')?.remove();
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(item);
  while (log.children.length > LOG_LENGTH) log.firstElementChild?.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// ---- joining, sending, leaving ---------------------------------------------------------------

/** @param {string} name */
async function join(name) {
  const wanted = name.trim().slice(0, 32);
  if (wanted === '') return;
  joinButton.disabled = true;
  try {
    // Subscribed first, so this page sees its own notice too.
    await whenOpen(5000);
    await connection.publish(topic, 'join', { nick: wanted });
    nick = wanted;
    formError.textContent = '';
    nickInput.disabled = true;
    joinButton.hidden = true;
    leaveButton.hidden = false;
    me.textContent = `you are ${nick}`;
    messageInput.disabled = false;
    sendButton.disabled = false;
    messageInput.placeholder = `say something, ${nick}`;
    messageInput.focus();
  } catch (error) {
    formError.textContent = `Joining failed: ${/** @type {Error} */ (error).message}`;
  } finally {
    joinButton.disabled = false;
  }
}

/**
 * Resolves once the connection is open, or after `ms` whatever its state.
 * @param {number} ms
 */
function whenOpen(ms) {
  if (connection.status === 'open') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      connection.removeEventListener('status', check);
      resolve(undefined);
    };
    const check = () => {
      if (connection.status === 'open' || connection.status === 'closed') done();
    };
    const timer = setTimeout(done, ms);
    connection.addEventListener('status', check);
  });
}

async function leave() {
  const was = nick;
  if (was === '') return;
  nick = '';
  nickInput.disabled = false;
  joinButton.hidden = false;
  leaveButton.hidden = true;
  me.textContent = '';
  messageInput.disabled = true;
  sendButton.disabled = true;
  messageInput.placeholder = 'join first, then say something';
  try {
    await connection.publish(topic, 'leave', { nick: was });
  } catch (error) {
    formError.textContent = `Leaving failed: ${/** @type {Error} */ (error).message}`;
  }
}

joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  join(nickInput.value);
});
leaveButton.addEventListener('click', leave);

compose.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = messageInput.value.trim();
  if (text === '' || nick === '') return;
  sendButton.disabled = true;
  try {
    // WebSocket: a publish frame on the socket; HTTP transports: POST /v1/publish.
    await connection.publish(topic, 'message', { nick, text });
    messageInput.value = '';
    formError.textContent = '';
  } catch (error) {
    formError.textContent = `Sending failed: ${/** @type {Error} */ (error).message}`;
  } finally {
    sendButton.disabled = false;
    messageInput.focus();
  }
});

const preset = params.get('nick');
if (preset) {
  nickInput.value = preset.slice(0, 32);
  join(preset);
}

// ---- presence --------------------------------------------------------------------------------

/**
 * A reader joined or left: the server's count, and a line in the log. Nicknames are the page's
 * own, so the line names the reader's user only when it has one (with a token).
 * @param {import('./pushgate.js').PresenceNotice} notice
 */
function showPresence(notice) {
  showCount(notice.total);
  const who = notice.user ?? 'a reader';
  const verb = notice.event === 'join' ? 'joined' : 'left';
  const time = element('span', { class: 'time' }, clock(Date.now()));
  append(element('li', { class: 'notice', 'data-testid': 'chat-notice', 'data-kind': `presence-${notice.event}` }, time, `${who} ${verb} (${notice.transport})`));
}

/** @param {number} total */
function showCount(total) {
  online.textContent = String(total);
  online.dataset.total = String(total);
}

async function readPresence() {
  try {
    const response = await fetch(`/v1/presence/${encodeURIComponent(topic)}`, { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    showCount(body.total);
    const parts = Object.entries(body.transports ?? body.by_transport ?? {}).map(([name, count]) => `${count} ${name}`);
    onlineDetail.textContent = parts.length ? `readers: ${parts.join(', ')}` : 'no readers';
  } catch (error) {
    onlineDetail.textContent = `presence unavailable (${error})`;
  }
}
readPresence();
setInterval(() => {
  if (connection.transport === 'poll') readPresence();
}, PRESENCE_EVERY_MS);
