// Limits: how many jobs of a concurrency key (or of a job type, `type:<type>`) may run at
// once, how many may start in a window, and whether they start at all — with what each
// holds back right now. Keys that may manage limits (admin) create, edit, pause, resume and
// delete them; every other key sees them read-only.

import {addressable, can, del, get, put, segment, session, ws} from '../api.js';
import {h, icon, replace} from '../dom.js';
import {count} from '../format.js';
import {field, openFormDialog} from '../forms.js';
import {onWorkspaceEvent} from '../live.js';
import {confirmDialog, emptyState, errorBox, throttle, timeAgo, toast} from '../ui.js';

const POLL_MS = 5000;
const NAME_MAX = 200;
// The names a limit may have: 1..200 printable characters (as the server checks).
const NAME_PATTERN = /^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]{1,200}$/;  // domain/capacity.py, UNPRINTABLE

function limitPath(name) {
  return ws(`/limits/${segment(name)}`);
}

// Said where a limit's name is one the browser cannot put in a request (see api.js).
const UNREACHABLE = 'a browser reads it in a web address as “this folder” or “the one above”';

/** A limit's rate as people say it: "10 per 60 s". */
export function rateText(rate) {
  return rate ? `${count(rate.count)} per ${Number(rate.per_seconds)} s` : 'no cap';
}

/** Why a limit lets none of its jobs start: "8/8 running", "paused", "rate: 10 per 60 s". */
export function whyText(limit, reason) {
  if (reason === 'paused') return 'paused';
  if (reason === 'full') return `${limit.running}/${limit.max_running} running`;
  if (reason === 'rate') return `rate: ${rateText(limit.rate)}`;
  return String(reason || '');
}

const STATES = {
  paused: {label: 'Paused', tone: 'status-cancelled'},
  full: {label: 'Full', tone: 'status-queued'},
  rate: {label: 'Rate reached', tone: 'status-queued'},
  open: {label: 'Open', tone: 'status-completed'},
};

function stateBadge(limit) {
  const state = limit.waiting_because || 'open';
  const {label, tone} = STATES[state] || {label: state, tone: 'status-pending'};
  return h('span', {class: ['badge', tone], 'data-testid': 'limit-state', 'data-state': state},
    h('span', {class: 'badge-dot', 'aria-hidden': 'true'}), label);
}

/** The whole limit for a PUT, from what the server last said and the changes asked for. */
function body(limit, changes = {}) {
  const merged = {max_running: limit.max_running ?? null, rate: limit.rate ?? null, paused: Boolean(limit.paused), ...changes};
  return {
    max_running: merged.max_running,
    rate: merged.rate ? {count: merged.rate.count, per_seconds: merged.rate.per_seconds} : null,
    paused: merged.paused,
  };
}

/** The whole limit goes back at the version read, so another change made meanwhile is not
 * undone: the server refuses a stale version (409), and the limit is read again after a
 * moment (spread, so that two tabs doing the same do not meet again). */
async function putPaused(name, paused, attempts = 3) {
  for (let attempt = 1; ; attempt += 1) {
    const fresh = await get(limitPath(name));
    try {
      return await put(limitPath(name), {...body(fresh, {paused}), expected_version: fresh.version});
    } catch (error) {
      if (error.status !== 409 || attempt >= attempts) throw error;
    }
    await new Promise((done) => setTimeout(done, 100 * attempt * (1 + Math.random())));
  }
}

export function mountLimits(main) {
  document.title = 'Limits · Conveyor';
  const manage = can('manage_limits');
  let stopped = false;
  let timer = null;
  let controller = null;
  let loaded = false;
  let limits = [];
  let focusAfter = null; // {name, action}: where focus goes once the table is drawn again

  const updated = h('span', {class: 'muted', 'data-testid': 'updated'});
  const listBox = h('div', {class: 'card card-flush', 'aria-busy': 'true'}, h('p', {class: 'muted pad'}, 'Loading…'));
  const actions = h('div', {class: 'page-actions'});
  if (manage) {
    const create = h('button', {class: 'button button-primary', type: 'button', 'data-testid': 'new-limit'}, icon('plus'), h('span', {}, 'New limit'));
    create.addEventListener('click', async () => {
      const saved = await openLimitDialog({existing: limits.map((limit) => limit.name)});
      if (saved) {
        toast(`Limit ${saved.name} created`, {kind: 'success'});
        focusAfter = {name: saved.name, action: 'edit'};
        load();
      } else {
        create.focus();
      }
    });
    actions.append(create);
  }

  main.append(h('div', {class: 'page'},
    h('div', {class: 'page-head'},
      h('div', {},
        h('h1', {class: 'page-title', tabindex: '-1'}, 'Limits'),
        h('p', {class: 'page-subtitle'}, 'Workspace ', h('strong', {}, session().workspace.slug), ' · ', updated)),
      actions),
    h('p', {class: 'limits-intro'},
      'A job counts against the limit named by its concurrency key and the limit ',
      h('code', {}, 'type:<its type>'), ', when they exist. A limit caps how many of its jobs run at once, ',
      'how many start in a window, or pauses them: jobs it holds back wait Queued and start as soon as there is room.'),
    manage ? null : h('p', {class: 'alert alert-info', 'data-testid': 'limits-read-only'},
      h('strong', {}, 'Read only. '), `Limits are managed with an admin key; you signed in with a ${session().role} key.`),
    listBox));

  async function load() {
    clearTimeout(timer);
    if (controller) controller.abort();
    const mine = new AbortController();
    controller = mine;
    try {
      const found = await get(ws('/limits'), {signal: mine.signal});
      if (stopped) return;
      limits = found.data || [];
      render();
      loaded = true;
      replace(updated, 'updated ', timeAgo(new Date().toISOString()));
    } catch (error) {
      if (stopped || error.name === 'AbortError') return;
      if (!loaded) replace(listBox, errorBox(error, {retry: load}));
      else replace(updated, h('span', {class: 'text-error'}, `update failed: ${error.detail || error.message}`));
    } finally {
      if (controller === mine && !stopped) {
        listBox.setAttribute('aria-busy', 'false');
        timer = setTimeout(load, POLL_MS);
      }
    }
  }

  function actionButton(limit, action, label, {danger = false, iconName = null} = {}) {
    const button = h('button', {
      class: ['button', 'button-small', danger ? 'button-danger-ghost' : null], type: 'button',
      'data-testid': `${action}-limit`, 'data-action': action, 'aria-label': `${label} limit ${limit.name}`,
    }, iconName ? icon(iconName) : null, h('span', {}, label));
    button.addEventListener('click', () => act(limit, action, button));
    return button;
  }

  function render() {
    if (!limits.length) {
      replace(listBox, emptyState('No limits',
        manage ? 'Every job may start. Add a limit with "New limit", or with `conveyor limits set`.' : 'Every job may start.'));
      return;
    }
    const rows = limits.map((limit) => {
      const cap = limit.max_running;
      return h('tr', {'data-testid': 'limit-row', 'data-name': limit.name},
        h('th', {scope: 'row', class: 'cell-name mono'}, limit.name),
        h('td', {'data-label': 'Running', 'data-testid': 'limit-running', class: 'num'},
          `${count(limit.running)} / ${cap === null || cap === undefined ? '∞' : count(cap)}`),
        h('td', {'data-label': 'Queued', 'data-testid': 'limit-queued', class: 'num'}, count(limit.queued)),
        h('td', {'data-label': 'Rate', 'data-testid': 'limit-rate'},
          limit.rate ? rateText(limit.rate) : h('span', {class: 'muted'}, 'no cap'),
          limit.rate ? h('span', {class: 'sub', 'data-testid': 'limit-window'}, `${count(limit.started_in_window)} started in the window`) : null),
        h('td', {'data-label': 'State', class: 'cell-state'}, stateBadge(limit),
          limit.waiting_because ? h('span', {class: 'sub', 'data-testid': 'limit-why'}, `none may start: ${whyText(limit, limit.waiting_because)}`) : null),
        manage ? h('td', {class: 'actions cell-actions'}, addressable(limit.name)
          ? h('div', {class: 'row-actions'},
            actionButton(limit, 'edit', 'Edit', {iconName: 'edit'}),
            limit.paused
              ? actionButton(limit, 'resume', 'Resume', {iconName: 'play'})
              : actionButton(limit, 'pause', 'Pause', {iconName: 'pause'}),
            actionButton(limit, 'delete', 'Delete', {danger: true}))
          : h('span', {class: 'muted', 'data-testid': 'limit-unreachable'},
            `Managed through the API only: ${UNREACHABLE}.`)) : null);
    });
    const hadFocus = listBox.contains(document.activeElement) ? document.activeElement : null;
    const wanted = focusAfter || (hadFocus && hadFocus.dataset.action
      ? {name: hadFocus.closest('tr').dataset.name, action: hadFocus.dataset.action} : null);
    replace(listBox, h('div', {class: 'table-wrap'}, h('table', {class: 'table table-stack table-limits', 'data-testid': 'limits-table'},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Name'), h('th', {scope: 'col', class: 'num'}, 'Running'), h('th', {scope: 'col', class: 'num'}, 'Queued'),
        h('th', {scope: 'col'}, 'Rate'), h('th', {scope: 'col'}, 'State'),
        manage ? h('th', {scope: 'col'}, h('span', {class: 'sr-only'}, 'Actions')) : null)),
      h('tbody', {}, rows))));
    focusAfter = null;
    if (wanted) {
      const row = [...listBox.querySelectorAll('tr[data-name]')].find((item) => item.dataset.name === wanted.name);
      const target = row && (row.querySelector(`[data-action="${wanted.action}"]`) || row.querySelector('button'));
      if (target) target.focus();
    }
  }

  async function act(limit, action, button) {
    if (action === 'edit') {
      const saved = await openLimitDialog({limit});
      if (saved) {
        toast(`Limit ${saved.name} saved`, {kind: 'success'});
        focusAfter = {name: saved.name, action: 'edit'};
        load();
      } else {
        button.focus();
      }
      return;
    }
    if (action === 'delete') {
      const sure = await confirmDialog({
        title: `Delete limit “${limit.name}”?`,
        body: limit.queued
          ? `Its ${count(limit.queued)} queued ${limit.queued === 1 ? 'job' : 'jobs'} no longer wait for it: they may start at once.`
          : 'Its jobs start with no cap from it from now on.',
        confirm: 'Delete limit', cancel: 'Keep it', danger: true,
      });
      if (!sure) {
        button.focus();
        return;
      }
    }
    button.disabled = true;
    try {
      if (action === 'delete') {
        await del(limitPath(limit.name));
        toast(`Limit ${limit.name} deleted`, {kind: 'success'});
      } else {
        await putPaused(limit.name, action === 'pause');
        toast(action === 'pause' ? `Limit ${limit.name} paused: none of its jobs start` : `Limit ${limit.name} resumed`, {kind: 'success'});
        focusAfter = {name: limit.name, action: action === 'pause' ? 'resume' : 'pause'};
      }
    } catch (error) {
      toast(`Could not ${action} the limit: ${error.detail || error.message}`, {kind: 'error'});
      button.disabled = false;
    }
    if (!stopped) load();
  }

  // Jobs starting and ending change the counts: look again soon.
  const soon = throttle(load, 1000);
  const unsubscribe = onWorkspaceEvent((type) => {
    if (type.startsWith('job.') && type !== 'job.progress') soon();
  });
  load();

  return () => {
    stopped = true;
    clearTimeout(timer);
    soon.cancel();
    unsubscribe();
    if (controller) controller.abort();
  };
}

/** Create (no `limit`) or edit a limit; resolves with the saved limit, or null. */
export function openLimitDialog({limit = null, existing = []} = {}) {
  const editing = Boolean(limit);
  const name = h('input', {
    id: 'limit-name', class: 'input input-wide mono', required: true, autocomplete: 'off', spellcheck: 'false',
    maxlength: String(NAME_MAX), placeholder: 'openai, customer-42 or type:email.send', value: limit ? limit.name : '',
    readonly: editing, 'aria-describedby': 'limit-name-help',
  });
  const maxRunning = h('input', {
    id: 'limit-max-running', class: 'input', type: 'number', min: '0', step: '1', inputmode: 'numeric',
    placeholder: 'no cap', 'aria-describedby': 'limit-max-running-help',
  });
  const rateCount = h('input', {
    id: 'limit-rate-count', class: 'input', type: 'number', min: '1', step: '1', inputmode: 'numeric',
    placeholder: 'no cap', 'aria-describedby': 'limit-rate-help',
  });
  const rateSeconds = h('input', {
    id: 'limit-rate-seconds', class: 'input', type: 'number', min: '0', step: 'any', inputmode: 'decimal',
    placeholder: 'seconds', 'aria-describedby': 'limit-rate-help',
  });
  const paused = h('input', {id: 'limit-paused', type: 'checkbox', 'aria-describedby': 'limit-paused-help'});

  function show(current) {
    maxRunning.value = current.max_running === null || current.max_running === undefined ? '' : String(current.max_running);
    rateCount.value = current.rate ? String(current.rate.count) : '';
    rateSeconds.value = current.rate ? String(current.rate.per_seconds) : '';
    paused.checked = Boolean(current.paused);
  }
  if (limit) show(limit);
  // What the dialog showed the operator of the limit (null: there is none). A PUT sets the
  // whole limit: it goes with the version shown (0: none), and the server refuses it if
  // the limit changed, or was made, since (another operator pausing it), which is then
  // shown, not undone.
  let shown = limit;
  name.addEventListener('input', () => { shown = null; }); // a new name: none of it shown

  async function save({limitName, body: wanted}) {
    try {
      return await put(limitPath(limitName), {...wanted, expected_version: shown ? shown.version : 0});
    } catch (error) {
      if (error.status !== 409 && error.status !== 404) throw error;
      const was = shown;
      try {
        shown = await get(limitPath(limitName));
      } catch (again) {
        if (again.status !== 404) throw again;
        shown = null;
      }
      if (!shown) {
        throw new Error(`Not saved: limit ${limitName} was deleted elsewhere while this was open. Save again to create it with these values.`);
      }
      show(shown);
      throw new Error(was
        ? `Not saved: limit ${limitName} was changed elsewhere while this was open. The fields show it as it is now; make your change again.`
        : `Not saved: a limit named ${limitName} was made elsewhere while this was open. The fields show it as it is now; make your change again.`);
    }
  }

  function prepare(fail) {
    const limitName = editing ? limit.name : name.value.trim();
    if (!NAME_PATTERN.test(limitName)) {
      fail(`The name must be 1 to ${NAME_MAX} printable characters.`, name);
      return undefined;
    }
    if (!addressable(limitName)) {
      fail(`Choose another name: the dashboard cannot manage a limit named “${limitName}”, since ${UNREACHABLE}.`, name);
      return undefined;
    }
    if (!editing && existing.includes(limitName)) {
      fail(`There is a limit named ${limitName} already: edit it instead.`, name);
      return undefined;
    }
    let max = null;
    if (maxRunning.value.trim() !== '') {
      max = Number(maxRunning.value);
      if (!Number.isInteger(max) || max < 0) {
        fail('Max running must be a whole number, 0 or more (or empty: no cap).', maxRunning);
        return undefined;
      }
    }
    let rate = null;
    const countText = rateCount.value.trim();
    const secondsText = rateSeconds.value.trim();
    if (countText !== '' || secondsText !== '') {
      const starts = Number(countText);
      const seconds = Number(secondsText);
      if (!Number.isInteger(starts) || starts < 1 || countText === '') {
        fail('The rate needs a whole number of starts, 1 or more.', rateCount);
        return undefined;
      }
      if (!(seconds > 0) || !Number.isFinite(seconds)) {
        fail('The rate needs a window of more than 0 seconds.', rateSeconds);
        return undefined;
      }
      rate = {count: starts, per_seconds: seconds};
    }
    return {limitName, body: {max_running: max, rate, paused: paused.checked}};
  }

  return openFormDialog({
    titleId: 'limit-dialog-title',
    title: editing ? `Edit limit ${limit.name}` : 'New limit',
    testid: 'limit-dialog',
    errorTestid: 'limit-error',
    submitLabel: editing ? 'Save limit' : 'Create limit',
    submitTestid: 'save-limit',
    content: [
      field('limit-name', 'Name', name, editing
        ? 'A limit keeps its name: to rename one, create the new limit and delete this one.'
        : 'A concurrency key (a customer, a model API…) or type:<job type> for every job of that type.'),
      field('limit-max-running', 'Max running', maxRunning, 'At most this many of its jobs Running at once. Empty: no cap; 0: none start.'),
      h('div', {class: 'field-row'},
        field('limit-rate-count', 'Rate: starts', rateCount),
        field('limit-rate-seconds', 'per seconds', rateSeconds)),
      h('p', {class: 'help limit-rate-help', id: 'limit-rate-help'}, 'At most this many starts in any window this long. Both empty: no cap.'),
      h('div', {class: 'field field-check'},
        h('label', {class: 'check check-left', for: 'limit-paused'}, paused, 'Paused'),
        h('p', {class: 'help', id: 'limit-paused-help'}, 'None of its jobs start; the running ones go on.')),
    ],
    focus: editing ? maxRunning : name,
    fields: {name, max_running: maxRunning, 'rate.count': rateCount, 'rate.per_seconds': rateSeconds},
    prepare,
    send: save,
  });
}
