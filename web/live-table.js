// @ts-check
/**
 * The live table: the demo's `users` table, kept in step with the database through `db.users`
 * (see snapshot.js for the load-then-subscribe pattern and the restart handling).
 *
 * Tests read `[data-testid=row-<id>]` (a `<tr>` whose cells carry `data-field`), act through
 * `edit-<id>`, `delete-<id>`, `edit-name-<id>`, `edit-email-<id>`, `edit-active-<id>`, `save-<id>`,
 * `cancel-<id>` and the insert form (`new-name`, `new-email`, `new-active`, `add`), and read
 * `sync` (with `data-phase` loading|live|failed and `data-resets`), `change-count` and `form-error`.
 * @module live-table
 */

import { element } from './demo.js';
import { changeOf, clock, demoRequest, followSnapshot } from './snapshot.js';

/** @typedef {{id: number, name: string, email: string|null, active: boolean, created_at: string}} User */

/** Entries kept in the list of changes received. */
const LOG_LENGTH = 12;

const tbody = /** @type {HTMLTableSectionElement} */ (document.querySelector('#users tbody'));
const form = /** @type {HTMLFormElement} */ (document.querySelector('#insert'));
const formError = /** @type {HTMLElement} */ (document.querySelector('[data-testid="form-error"]'));
const sync = /** @type {HTMLElement} */ (document.querySelector('[data-testid="sync"]'));
const changeLog = /** @type {HTMLOListElement} */ (document.querySelector('[data-testid="changes"]'));
const changeCount = /** @type {HTMLElement} */ (document.querySelector('[data-testid="change-count"]'));

/** @type {Map<number, User>} the table as this page knows it */
const rows = new Map();
/** @type {Map<number, HTMLTableRowElement>} */
const rowElements = new Map();
/** Rows in edit mode: an event for them updates `rows` but leaves the inputs alone. */
const editing = new Set();
let changesApplied = 0;
let resets = 0;
let snapshotInfo = '';

followSnapshot({
  table: 'users',
  topics: ['db.users'],
  chrome: /** @type {Element} */ (document.querySelector('#chrome')),
  onSnapshot(snapshotRows, cursor) {
    rows.clear();
    editing.clear();
    for (const row of snapshotRows) rows.set(row.id, row);
    renderAll();
    changesApplied = 0;
    snapshotInfo = `Snapshot of ${snapshotRows.length} row${snapshotRows.length === 1 ? '' : 's'} at cursor ${cursor}`;
  },
  onEvent(event) {
    const change = changeOf(event);
    if (!change) return;
    const id = Number(change.row.id);
    if (change.op === 'upsert') {
      rows.set(id, change.row);
      renderRow(id, true);
    } else {
      rows.delete(id);
      editing.delete(id);
      rowElements.get(id)?.remove();
      rowElements.delete(id);
      renderEmpty();
    }
    changesApplied += 1;
    logChange(event.event, `#${id} ${change.row.name ?? ''}`, event.ts);
    showSync('live');
  },
  onReset(reset) {
    resets += 1;
    logChange('reset', `${reset.reason}: reloading the snapshot`, Date.now());
  },
  onState(state) {
    if (state.phase === 'failed') sync.textContent = `Cannot load the rows: ${state.error}. Retrying…`;
    else if (state.phase === 'loading') sync.textContent = 'Loading the snapshot…';
    showSync(state.phase, state.phase === 'live');
  },
});

/**
 * @param {'loading'|'live'|'failed'} phase
 * @param {boolean} [text] rewrite the text (live only)
 */
function showSync(phase, text = phase === 'live') {
  sync.dataset.phase = phase;
  sync.dataset.resets = String(resets);
  if (!text) return;
  const applied = `${changesApplied} change${changesApplied === 1 ? '' : 's'} applied since`;
  const restarts = resets ? `; started over after ${resets} reset${resets === 1 ? '' : 's'}` : '';
  sync.textContent = `${snapshotInfo}; ${applied}${restarts}.`;
}

/**
 * @param {string} op insert, update, delete or reset
 * @param {string} what
 * @param {number} ts
 */
function logChange(op, what, ts) {
  const item = element('li', {}, element('span', { class: 'muted' }, clock(ts)), ' ', element('span', { class: `op op-${op}` }, op), ' ', what);
  changeLog.prepend(item);
  while (changeLog.children.length > LOG_LENGTH) changeLog.lastElementChild?.remove();
  const count = Number(changeCount.dataset.count) + 1;
  changeCount.dataset.count = String(count);
  changeCount.textContent = String(count);
}

// ---- rendering -------------------------------------------------------------------------------

function renderAll() {
  rowElements.clear();
  tbody.replaceChildren();
  for (const id of [...rows.keys()].sort((a, b) => a - b)) renderRow(id, false);
  renderEmpty();
}

function renderEmpty() {
  const empty = tbody.querySelector('tr.empty');
  if (rows.size === 0 && !empty) {
    tbody.append(element('tr', { class: 'empty' }, element('td', { colspan: '6' }, 'No rows yet: add one above.')));
  } else if (rows.size > 0) empty?.remove();
}

/**
 * Draws row `id` from `rows` in place, or inserts it in id order.
 * @param {number} id
 * @param {boolean} flash highlight it (a change arrived)
 */
function renderRow(id, flash) {
  const row = rows.get(id);
  if (!row) return;
  let tr = rowElements.get(id);
  if (tr && editing.has(id)) {
    // Someone else changed the row being edited here: say so, keep the inputs.
    const note = tr.querySelector('.changed-elsewhere');
    if (note) note.textContent = 'changed elsewhere meanwhile';
    return;
  }
  const fresh = viewRow(row);
  if (tr) tr.replaceWith(fresh);
  else {
    const next = [...rowElements.entries()].filter(([other]) => other > id).sort(([a], [b]) => a - b)[0];
    if (next) next[1].before(fresh);
    else tbody.append(fresh);
  }
  rowElements.set(id, fresh);
  tr = fresh;
  if (flash) tr.classList.add('flash');
  renderEmpty();
}

/**
 * A row in view mode. All user text goes in through textContent.
 * @param {User} row
 */
function viewRow(row) {
  const tr = element('tr', { 'data-testid': `row-${row.id}`, 'data-id': String(row.id) });
  tr.append(
    element('td', { 'data-field': 'id' }, String(row.id)),
    element('td', { 'data-field': 'name' }, String(row.name ?? '')),
    element('td', { 'data-field': 'email' }, row.email == null ? '' : String(row.email)),
    element('td', { 'data-field': 'active' }, row.active ? 'yes' : 'no'),
    element('td', { 'data-field': 'created_at', title: String(row.created_at ?? '') }, shortTime(row.created_at)),
  );
  const edit = element('button', { type: 'button', 'data-testid': `edit-${row.id}` }, 'Edit');
  const remove = element('button', { type: 'button', class: 'danger', 'data-testid': `delete-${row.id}` }, 'Delete');
  edit.addEventListener('click', () => startEditing(row.id));
  remove.addEventListener('click', () => removeRow(row.id, remove));
  tr.append(element('td', { class: 'actions' }, edit, ' ', remove));
  return tr;
}

/** @param {number} id */
function startEditing(id) {
  const row = rows.get(id);
  const old = rowElements.get(id);
  if (!row || !old) return;
  editing.add(id);
  const name = element('input', { type: 'text', value: String(row.name ?? ''), maxlength: '200', 'aria-label': 'name', 'data-testid': `edit-name-${id}` });
  const email = element('input', { type: 'email', value: row.email == null ? '' : String(row.email), maxlength: '200', 'aria-label': 'email', 'data-testid': `edit-email-${id}` });
  const active = element('input', { type: 'checkbox', 'aria-label': 'active', 'data-testid': `edit-active-${id}` });
  active.checked = Boolean(row.active);
  const save = element('button', { type: 'button', class: 'primary', 'data-testid': `save-${id}` }, 'Save');
  const cancel = element('button', { type: 'button', 'data-testid': `cancel-${id}` }, 'Cancel');
  const tr = element('tr', { 'data-testid': `row-${id}`, 'data-id': String(id), class: 'editing' });
  tr.append(
    element('td', { 'data-field': 'id' }, String(id)),
    element('td', {}, name),
    element('td', {}, email),
    element('td', {}, active),
    element('td', {}, element('span', { class: 'changed-elsewhere' })),
    element('td', { class: 'actions' }, save, ' ', cancel),
  );
  const finish = () => {
    editing.delete(id);
    if (rows.has(id)) renderRow(id, false);
    else {
      tr.remove();
      rowElements.delete(id);
    }
  };
  save.addEventListener('click', async () => {
    save.disabled = true;
    try {
      const updated = await demoRequest('PUT', `/demo/users/${id}`, {
        name: name.value,
        email: email.value.trim() === '' ? null : email.value.trim(),
        active: active.checked,
      });
      formError.textContent = '';
      // The answer is the row as written; its event arrives too and changes nothing more.
      if (updated && rows.has(id)) rows.set(id, updated);
      finish();
    } catch (error) {
      formError.textContent = `Saving row ${id} failed: ${/** @type {Error} */ (error).message}`;
      save.disabled = false;
    }
  });
  cancel.addEventListener('click', finish);
  tr.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') save.click();
    if (event.key === 'Escape') cancel.click();
  });
  old.replaceWith(tr);
  rowElements.set(id, tr);
  name.focus();
}

/**
 * @param {number} id
 * @param {HTMLButtonElement} button
 */
async function removeRow(id, button) {
  button.disabled = true;
  try {
    await demoRequest('DELETE', `/demo/users/${id}`);
    formError.textContent = '';
    // The page removes the row when its `delete` event arrives, like every other page.
  } catch (error) {
    formError.textContent = `Deleting row ${id} failed: ${/** @type {Error} */ (error).message}`;
    button.disabled = false;
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const email = String(data.get('email') ?? '').trim();
  const button = /** @type {HTMLButtonElement} */ (form.querySelector('button[type="submit"]'));
  button.disabled = true;
  try {
    const created = await demoRequest('POST', '/demo/users', {
      name: String(data.get('name') ?? ''),
      email: email === '' ? null : email,
      active: data.get('active') === 'on',
    });
    formError.textContent = '';
    form.reset();
    if (created && created.id !== undefined && !rows.has(created.id)) {
      rows.set(created.id, created);
      renderRow(created.id, true);
    }
  } catch (error) {
    formError.textContent = `Adding the row failed: ${/** @type {Error} */ (error).message}`;
  } finally {
    button.disabled = false;
  }
});

/**
 * `2025-05-06T07:08:09.123Z` → `2025-05-06 07:08:09` in the browser's zone.
 * @param {unknown} value
 */
function shortTime(value) {
  const date = new Date(String(value));
  if (Number.isNaN(date.getTime())) return String(value ?? '');
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
