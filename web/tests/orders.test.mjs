// Order alerts (web/orders.html) on each transport: a hurry from the customer page raises the
// admin pop-up within 2 s (short poll: its interval + 2 s), the unseen count accumulates to 2
// after two hurries, the admin page of another user id sees nothing, and acknowledging clears
// the count and tells the customer. A status change on the admin page reaches the customer page.
// Saves docs/images/orders.png.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as lib from './lib.mjs';

/** The short-poll interval the pages are opened with (`?interval=`). */
const POLL_INTERVAL_MS = 500;

/** Each test stops and fails after this long, whatever it waits for. */
const TEST_TIMEOUT_MS = 60_000;

/** @type {import('./lib.mjs').Gateway} */
let gateway;
/** @type {import('playwright-core').Browser} */
let browser;
/** User ids no other test uses (the shared gateway keeps its orders table for the whole run). */
let nextUser = 70_000 + (process.pid % 1000) * 10;

before(async () => {
  gateway = await lib.sharedGateway();
  browser = await lib.launchBrowser();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
});

/** Opens the page of `role` for `user` and waits for its connection to be open. */
function openOrders(transport, role, user) {
  return lib.openPage(browser, gateway, 'orders.html', {
    transport,
    query: { role, user: String(user), interval: String(POLL_INTERVAL_MS) },
    waitForOpen: true,
  });
}

/** Places an order for `user` through the REST API. */
function placeOrder(user, item, amount) {
  return lib.requestJson(gateway, '/demo/orders', { method: 'POST', body: { item, amount, user_id: user } });
}

for (const transport of lib.TRANSPORTS) {
  test(`${transport}: hurries raise the admin pop-up and add up; another user's admin sees nothing`, { timeout: TEST_TIMEOUT_MS }, async () => {
    const bound = (transport === 'poll' ? POLL_INTERVAL_MS : 0) + 2000;
    const user = nextUser++;
    const other = nextUser++;
    const order = await placeOrder(user, 'Espresso machine', 249.9);
    await placeOrder(other, 'Coffee grinder', 89);
    const customer = await openOrders(transport, 'customer', user);
    const admin = await openOrders(transport, 'admin', user);
    const otherAdmin = await openOrders(transport, 'admin', other);
    try {
      await lib.waitForVisible(customer, `hurry-${order.id}`);
      await lib.waitForVisible(admin, `order-${order.id}`);
      assert.equal(await admin.isVisible('[data-testid="alert-popup"]'), false, 'no pop-up before any alert');

      await customer.click(`[data-testid="hurry-${order.id}"]`, { timeout: 2000 });
      await lib.waitForVisible(admin, 'alert-popup', { timeout: bound });
      await lib.waitForTestId(admin, 'alert-count', '1', { timeout: bound });
      await customer.click(`[data-testid="hurry-${order.id}"]`, { timeout: 2000 });
      await lib.waitForTestId(admin, 'alert-count', '2', { timeout: bound });

      // The customer's own page saw both alerts go out, on the same topic.
      await lib.waitUntil(async () => (await lib.textsOf(customer, 'customer-log')).join('').split('hurry order').length - 1 === 2, {
        timeout: bound,
        what: 'two alerts in the customer log',
      });
      // The other customer's admin page: give it the same time, then nothing may be there.
      await lib.sleep(bound);
      assert.equal(await otherAdmin.isVisible('[data-testid="alert-popup"]'), false, "another user's admin has no pop-up");
      assert.equal(await lib.waitForTestId(otherAdmin, 'alert-count', /.*/), '0');
      assert.equal((await lib.textsOf(otherAdmin, 'admin-log')).join(''), '');

      // Acknowledged: the count starts over, the pop-up goes, the customer is told.
      await admin.click('[data-testid="acknowledge"]', { timeout: 2000 });
      await lib.waitForTestId(admin, 'alert-count', '0', { timeout: bound });
      assert.equal(await admin.isVisible('[data-testid="alert-popup"]'), false);
      await lib.waitForTestId(customer, 'ack-notice', /seen your 2 alerts/, { timeout: bound });

      // The shop moves the order on; the customer's page follows.
      await admin.selectOption(`[data-testid="status-${order.id}"]`, 'shipped', { timeout: 2000 });
      await lib.waitUntil(
        async () => (await customer.locator(`[data-testid="order-${order.id}"] [data-field="status"]`).textContent({ timeout: 1000 }))?.trim() === 'shipped',
        { timeout: bound, what: 'the customer page showing the order shipped' },
      );

      for (const page of [customer, admin, otherAdmin]) assert.deepEqual(page.problems, []);
    } finally {
      await customer.close();
      await admin.close();
      await otherAdmin.close();
    }
  });
}

test('screenshot: docs/images/orders.png', { timeout: TEST_TIMEOUT_MS }, async () => {
  const name = 'Margaret Hamilton';
  const person = await lib.requestJson(gateway, '/demo/users', { method: 'POST', body: { name, email: 'margaret@example.com' } });
  const orders = [];
  for (const [item, amount] of [['Mechanical keyboard', 129], ['USB-C dock', 79.5], ['27" monitor', 319], ['Desk lamp', 34.9]]) {
    orders.push(await placeOrder(person.id, item, amount));
  }
  await lib.requestJson(gateway, `/demo/orders/${orders[0].id}`, { method: 'PUT', body: { status: 'delivered' } });
  await lib.requestJson(gateway, `/demo/orders/${orders[1].id}`, { method: 'PUT', body: { status: 'shipped' } });
  const customer = await openOrders('ws', 'customer', person.id);
  const admin = await openOrders('ws', 'admin', person.id);
  try {
    await admin.setViewportSize({ width: 1200, height: 800 });
    await lib.waitForVisible(customer, `hurry-${orders[2].id}`);
    await customer.click(`[data-testid="hurry-${orders[2].id}"]`, { timeout: 2000 });
    await lib.waitForTestId(admin, 'alert-count', '1', { timeout: 2000 });
    await customer.click(`[data-testid="hurry-${orders[3].id}"]`, { timeout: 2000 });
    await customer.click(`[data-testid="hurry-${orders[2].id}"]`, { timeout: 2000 });
    await lib.waitForTestId(admin, 'alert-count', '3', { timeout: 2000 });
    await lib.waitForTestId(admin, 'who', new RegExp(name));
    await lib.screenshot(admin, 'orders');
  } finally {
    await customer.close();
    await admin.close();
  }
});
