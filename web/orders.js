// @ts-check
/**
 * Order alerts, two roles on one page: `?role=customer&user=<id>` and `?role=admin&user=<id>`
 * (without a role, a short explanation and links).
 *
 * Both pages load the demo's `orders` snapshot and follow `db.orders` from its cursor (see
 * snapshot.js), showing the rows whose `user_id` is the page's user, and follow the user's own
 * topic `alerts.user.<id>` on the same connection:
 * - `hurry` `{order_id, item}`: the customer asks the shop to hurry an order;
 * - `ack` `{ids, count}`: the shop has seen the alerts whose event ids are listed.
 * The admin page counts the unseen `hurry` events until acknowledged; acknowledging publishes an
 * `ack`, which clears the same alerts on every admin page of that user and tells the customer.
 *
 * Tests read `alert-popup` (hidden while nothing is unseen), `alert-count`, `order-<id>`,
 * `ack-notice`, and act through `hurry-<id>`, `acknowledge`, `status-<id>`.
 * @module orders
 */

import { publish } from './pushgate.js';
import { element } from './demo.js';
import { changeOf, clock, demoRequest, followSnapshot } from './snapshot.js';

/** @typedef {import('./pushgate.js').EventObject} EventObject */
/** @typedef {{send: (event: string, data: unknown) => Promise<unknown>, render: () => void}} Attachment */
/** @typedef {{id: number, user_id: number|null, item: string, amount: number, status: string, urgent: boolean, updated_at: string}} Order */

const STATUSES = ['new', 'preparing', 'shipped', 'delivered', 'cancelled'];
const LOG_LENGTH = 20;
/** Unseen alerts remembered at most (the count goes on beyond it). */
const UNSEEN_KEPT = 200;

const params = new URLSearchParams(location.search);
const role = params.get('role');
const userParam = params.get('user') ?? '1';
const user = /^\d{1,15}$/.test(userParam) ? Number(userParam) : NaN;

const sections = {
  landing: /** @type {HTMLElement} */ (document.querySelector('#landing')),
  customer: /** @type {HTMLElement} */ (document.querySelector('#customer')),
  admin: /** @type {HTMLElement} */ (document.querySelector('#admin')),
};

if ((role === 'customer' || role === 'admin') && Number.isSafeInteger(user)) {
  // Only the chosen role's section stays in the page, so every data-testid is unique.
  for (const [name, section] of Object.entries(sections)) {
    if (name === role) section.hidden = false;
    else section.remove();
  }
  startRole(role, sections[role]);
} else {
  sections.customer.remove();
  sections.admin.remove();
  sections.landing.hidden = false;
  /** @type {HTMLElement} */ (document.querySelector('#chrome')).remove();
  const choose = /** @type {HTMLFormElement} */ (document.querySelector('#choose'));
  choose.addEventListener('submit', (event) => {
    event.preventDefault();
    const submitter = /** @type {HTMLButtonElement|null} */ (/** @type {SubmitEvent} */ (event).submitter);
    const next = new URLSearchParams(location.search);
    next.set('role', submitter?.value ?? 'customer');
    next.set('user', String(new FormData(choose).get('user') ?? '1'));
    location.search = next.toString();
  });
}

/**
 * @param {'customer'|'admin'} which
 * @param {HTMLElement} section
 */
function startRole(which, section) {
  const topic = `alerts.user.${user}`;
  const $ = (/** @type {string} */ testid) => /** @type {HTMLElement} */ (section.querySelector(`[data-testid="${testid}"]`));
  $('alerts-topic').textContent = topic;
  $('who').textContent = `customer #${user}`;
  document.title = `${which === 'admin' ? 'Shop admin' : 'Customer'} #${user} · Order alerts · pushgate`;
  showName($('who'));

  const tbody = /** @type {HTMLTableSectionElement} */ (section.querySelector('table.orders tbody'));
  const formError = $('form-error');
  /** @type {Map<number, Order>} this user's orders */
  const orders = new Map();

  const view = which === 'customer' ? customerView(section, $, topic, orders, formError) : adminView(section, $, topic, orders, formError);

  const render = () => {
    const sorted = [...orders.values()].sort((a, b) => b.id - a.id);
    if (sorted.length === 0) {
      tbody.replaceChildren(element('tr', { class: 'empty' }, element('td', { colspan: '6' }, which === 'customer' ? 'No orders yet: place one above.' : 'This customer has no orders yet.')));
      return;
    }
    tbody.replaceChildren(...sorted.map((order) => view.row(order)));
  };

  const follower = followSnapshot({
    table: 'orders',
    topics: ['db.orders', topic],
    events: ['hurry', 'ack'],
    chrome: /** @type {Element} */ (document.querySelector('#chrome')),
    onSnapshot(rows) {
      orders.clear();
      for (const row of rows) if (row.user_id === user) orders.set(row.id, row);
      render();
    },
    onEvent(event) {
      if (event.topic === topic) {
        view.alert(event);
        render();
        return;
      }
      const change = changeOf(event);
      if (!change) return;
      // An order may also move to another user: then it leaves this page.
      if (change.op === 'upsert' && change.row.user_id === user) orders.set(change.row.id, change.row);
      else orders.delete(change.row.id);
      render();
    },
    onState(state) {
      if (state.phase === 'failed') formError.textContent = `Cannot load the orders: ${state.error}. Retrying…`;
      else if (state.phase === 'live' && formError.textContent?.startsWith('Cannot load')) formError.textContent = '';
    },
  });
  view.attach({
    // WebSocket: a publish frame on the page's socket; otherwise POST /v1/publish.
    send(event, data) {
      const connection = follower.connection;
      return connection ? connection.publish(topic, event, data) : publish(topic, event, data);
    },
    render,
  });
  render();
}

/**
 * The customer's side: place orders, hurry one, see the shop's acknowledgements.
 * @param {HTMLElement} section
 * @param {(testid: string) => HTMLElement} $
 * @param {string} topic
 * @param {Map<number, Order>} orders
 * @param {HTMLElement} formError
 */
function customerView(section, $, topic, orders, formError) {
  /** @type {Attachment['send']} */
  let send = async () => undefined;
  let rerender = () => {};
  const log = /** @type {HTMLOListElement} */ ($('customer-log'));
  const ackNotice = $('ack-notice');
  const form = /** @type {HTMLFormElement} */ (section.querySelector('#place'));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const amount = Number(data.get('amount') || 0);
    try {
      const created = await demoRequest('POST', '/demo/orders', { item: String(data.get('item') ?? ''), amount, user_id: user });
      formError.textContent = '';
      form.reset();
      if (created && created.id !== undefined && !orders.has(created.id)) {
        orders.set(created.id, created);
        rerender();
      }
    } catch (error) {
      formError.textContent = `Placing the order failed: ${/** @type {Error} */ (error).message}`;
    }
  });

  return {
    /** @param {Attachment} attachment */
    attach(attachment) {
      send = attachment.send;
      rerender = attachment.render;
    },
    /** @param {Order} order */
    row(order) {
      const hurry = element('button', { type: 'button', 'data-testid': `hurry-${order.id}` }, 'Hurry up');
      const done = order.status === 'delivered' || order.status === 'cancelled';
      hurry.disabled = done;
      hurry.title = done ? 'this order is done' : 'ask the shop to hurry';
      hurry.addEventListener('click', async () => {
        try {
          await send('hurry', { order_id: order.id, item: order.item });
          formError.textContent = '';
        } catch (error) {
          formError.textContent = `The alert was not sent: ${/** @type {Error} */ (error).message}`;
        }
      });
      return orderRow(order, element('span', { class: 'status-tag' }, String(order.status)), element('td', { class: 'actions' }, hurry));
    },
    /** @param {EventObject} event */
    alert(event) {
      const data = event.data ?? {};
      if (event.event === 'hurry') {
        logLine(log, event.ts, `You asked the shop to hurry order #${data.order_id} (${data.item ?? '?'}).`);
      } else if (event.event === 'ack') {
        const count = Number(data.count) || 0;
        const text = `The shop has seen your ${count === 1 ? 'alert' : `${count} alerts`} (${clock(event.ts)}).`;
        logLine(log, event.ts, text);
        ackNotice.textContent = text;
        ackNotice.hidden = false;
      }
    },
  };
}

/**
 * The shop's side for one customer: the pop-up of unseen alerts, acknowledging, order status.
 * @param {HTMLElement} section
 * @param {(testid: string) => HTMLElement} $
 * @param {string} topic
 * @param {Map<number, Order>} orders
 * @param {HTMLElement} formError
 */
function adminView(section, $, topic, orders, formError) {
  /** @type {Attachment['send']} */
  let send = async () => undefined;
  let rerender = () => {};
  const log = /** @type {HTMLOListElement} */ ($('admin-log'));
  const popup = $('alert-popup');
  const count = $('alert-count');
  const list = $('alert-list');
  const acknowledge = /** @type {HTMLButtonElement} */ ($('acknowledge'));
  /** @type {Map<string, {orderId: number, item: string, ts: number}>} unseen alerts by event id */
  const unseen = new Map();
  /** Unseen alerts no longer remembered individually (beyond UNSEEN_KEPT). */
  let overflow = 0;

  const showPopup = () => {
    const total = unseen.size + overflow;
    count.textContent = String(total);
    count.dataset.count = String(total);
    popup.hidden = total === 0;
    list.replaceChildren(
      ...[...unseen.values()].reverse().slice(0, 20).map((alert) =>
        element('li', {}, element('span', { class: 'muted' }, clock(alert.ts)), ` hurry up: order #${alert.orderId} (${alert.item})`),
      ),
    );
  };

  acknowledge.addEventListener('click', async () => {
    const ids = [...unseen.keys()];
    const total = unseen.size + overflow;
    unseen.clear();
    overflow = 0;
    showPopup();
    rerender();
    if (total === 0) return;
    try {
      // Every admin page of this customer clears the same alerts; the customer is told.
      await send('ack', { ids, count: total });
    } catch (error) {
      formError.textContent = `The acknowledgement was not sent: ${/** @type {Error} */ (error).message}`;
    }
  });

  return {
    /** @param {Attachment} attachment */
    attach(attachment) {
      send = attachment.send;
      rerender = attachment.render;
    },
    /** @param {Order} order */
    row(order) {
      const select = element('select', { 'data-testid': `status-${order.id}`, 'aria-label': `status of order ${order.id}` });
      const statuses = STATUSES.includes(order.status) ? STATUSES : [order.status, ...STATUSES];
      for (const status of statuses) select.append(element('option', { value: status }, status));
      select.value = order.status;
      select.addEventListener('change', async () => {
        try {
          await demoRequest('PUT', `/demo/orders/${order.id}`, { status: select.value });
          formError.textContent = '';
        } catch (error) {
          formError.textContent = `Changing order ${order.id} failed: ${/** @type {Error} */ (error).message}`;
        }
      });
      const hurries = [...unseen.values()].filter((alert) => alert.orderId === order.id).length;
      const tr = orderRow(order, select);
      if (hurries > 0) {
        tr.classList.add('hurried');
        tr.querySelector('td[data-field="item"]')?.append(element('span', { class: 'hurry-tag' }, `hurry ×${hurries}`));
      }
      return tr;
    },
    /** @param {EventObject} event */
    alert(event) {
      const data = event.data ?? {};
      if (event.event === 'hurry') {
        const orderId = Number(data.order_id);
        const item = typeof data.item === 'string' ? data.item : orders.get(orderId)?.item ?? '?';
        if (unseen.size >= UNSEEN_KEPT) overflow += 1;
        else unseen.set(event.id, { orderId, item, ts: event.ts });
        logLine(log, event.ts, `Customer asks to hurry order #${orderId} (${item}).`);
      } else if (event.event === 'ack') {
        const ids = Array.isArray(data.ids) ? data.ids : [];
        for (const id of ids) unseen.delete(String(id));
        if (unseen.size === 0) overflow = 0;
        logLine(log, event.ts, `Acknowledged ${Number(data.count) || ids.length} alert(s).`);
      }
      showPopup();
    },
  };
}

/**
 * One order as a table row; the status cell and an optional last cell come from the role.
 * @param {Order} order
 * @param {Node} status
 * @param {HTMLTableCellElement} [last]
 */
function orderRow(order, status, last) {
  const tr = element('tr', { 'data-testid': `order-${order.id}`, 'data-id': String(order.id) });
  const amount = Number(order.amount);
  tr.append(
    element('td', { class: 'num', 'data-field': 'id' }, `#${order.id}`),
    element('td', { 'data-field': 'item' }, String(order.item ?? '')),
    element('td', { class: 'num', 'data-field': 'amount' }, Number.isFinite(amount) ? amount.toFixed(2) : String(order.amount)),
    element('td', { 'data-field': 'status' }, status),
    element('td', { class: 'muted', 'data-field': 'updated_at' }, clock(order.updated_at)),
  );
  if (last) tr.append(last);
  return tr;
}

/**
 * @param {HTMLOListElement} log
 * @param {number} ts
 * @param {string} text
 */
function logLine(log, ts, text) {
  log.prepend(element('li', {}, element('span', { class: 'time' }, clock(ts)), text));
  while (log.children.length > LOG_LENGTH) log.lastElementChild?.remove();
}

/**
 * Shows the customer's name when the demo's `users` table has a row with this id (read from the
 * list: asking for a missing id would log a 404 in the console of every page for a made-up id).
 * @param {HTMLElement} target
 */
async function showName(target) {
  try {
    const response = await fetch('/demo/users', { cache: 'no-store' });
    if (!response.ok) return;
    const { rows } = await response.json();
    const row = Array.isArray(rows) ? rows.find((candidate) => candidate.id === user) : undefined;
    if (row && typeof row.name === 'string' && row.name !== '') target.textContent = `${row.name} (customer #${user})`;
  } catch {
    // the name is a nicety
  }
}
