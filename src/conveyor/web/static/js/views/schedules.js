// Schedules: cron rules that create jobs. The list shows each one's next fire times (the
// server computes them: `upcoming`) with Edit, Pause/Resume, Run now and Delete for roles
// that may manage them, a page at a time by name (as the job list pages), and a form to
// create one; a schedule's page shows what its ticks
// did and links the jobs they made. Times of a schedule are shown in its own time zone,
// named (its cron's fields are wall-clock times there), the browser's own in their title.

import {can, del, get, patch, post, segment, ws} from '../api.js';
import {h, icon, replace} from '../dom.js';
import {exact, JOB_TYPE, JOB_TYPE_HINT, shortId} from '../format.js';
import {field, formError, handleSubmit, openFormDialog} from '../forms.js';
import {parseJson} from '../json.js';
import {pager as makePager, readPaging, writePaging} from '../pager.js';
import {confirmDialog, emptyState, errorBox, statusBadge, timeAgo, toast} from '../ui.js';

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
const OUTCOMES = {
  fired: 'Fired',
  triggered: 'Run now',
  skipped_overlap: 'Skipped (previous run unfinished)',
  missed: 'Missed (no server was running)',
};

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

function stateBadge(schedule) {
  return schedule.paused
    ? h('span', {class: 'badge status-queued', 'data-testid': 'schedule-state'}, h('span', {class: 'badge-dot', 'aria-hidden': 'true'}), 'Paused')
    : h('span', {class: 'badge status-completed', 'data-testid': 'schedule-state'}, h('span', {class: 'badge-dot', 'aria-hidden': 'true'}), 'Active');
}

const zoneFormats = new Map();

/** How a time reads in `timeZone`: weekday, date, 24-hour time and the zone's name
 * ("Mon, Dec 14, 09:00 GMT+5:30"); with the year too when `withYear`. A zone this
 * browser does not know (the server's IANA database may be newer) reads as UTC, named. */
function zoneFormat(timeZone, withYear) {
  const key = `${timeZone} ${withYear}`;
  if (!zoneFormats.has(key)) {
    const options = {
      weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
      timeZoneName: 'short', year: withYear ? 'numeric' : undefined,
    };
    let format;
    try {
      format = new Intl.DateTimeFormat(undefined, {...options, timeZone});
    } catch {
      format = new Intl.DateTimeFormat(undefined, {...options, timeZone: 'UTC'});
    }
    zoneFormats.set(key, format);
  }
  return zoneFormats.get(key);
}

/** A time of `schedule`, in the schedule's time zone and named so (with its year when
 * that is not this one); the browser's own time in the title. */
function scheduleTime(value, schedule) {
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) return h('span', {class: 'muted'}, '—');
  const withYear = time.getFullYear() !== new Date().getFullYear();
  return h('time', {datetime: value, title: `your time: ${exact(value)}`},
    zoneFormat(schedule.timezone, withYear).format(time));
}

function upcomingList(schedule, {limit = 3} = {}) {
  if (!schedule.upcoming.length) return h('span', {class: 'muted'}, schedule.paused ? 'paused' : '—');
  return h('ol', {class: 'upcoming', 'data-testid': 'upcoming'},
    schedule.upcoming.slice(0, limit).map((time) => h('li', {}, scheduleTime(time, schedule))));
}

/** The actions on one schedule: each reports by toast and calls `changed` when done. */
function actionButtons(schedule, changed, {onDeleted} = {}) {
  if (!can('manage_schedules')) return null;
  const edit = h('button', {class: 'button button-small', type: 'button', 'data-testid': 'edit', 'aria-label': `Edit ${schedule.name}`},
    icon('edit'), h('span', {}, 'Edit'));
  const toggle = h('button', {class: 'button button-small', type: 'button', 'data-testid': schedule.paused ? 'resume' : 'pause'},
    icon(schedule.paused ? 'play' : 'stop'), h('span', {}, schedule.paused ? 'Resume' : 'Pause'));
  const run = h('button', {class: 'button button-small', type: 'button', 'data-testid': 'trigger', 'aria-label': `Run ${schedule.name} now`},
    icon('play'), h('span', {}, 'Run now'));
  const remove = h('button', {class: 'button button-small button-danger-ghost', type: 'button', 'data-testid': 'delete', 'aria-label': `Delete ${schedule.name}`}, 'Delete');
  const busy = (on) => { for (const button of [edit, toggle, run, remove]) button.disabled = on; };
  edit.addEventListener('click', async () => {
    const saved = await openScheduleDialog(schedule);
    if (saved) {
      toast(`${schedule.name} saved`, {kind: 'success'});
      changed();
    } else {
      edit.focus();
    }
  });
  toggle.addEventListener('click', async () => {
    busy(true);
    try {
      const updated = await patch(ws(`/schedules/${schedule.id}`), {paused: !schedule.paused});
      toast(updated.paused ? `${schedule.name} paused` : `${schedule.name} resumed`, {kind: 'success'});
      changed();
    } catch (error) {
      toast(`Could not change ${schedule.name}: ${error.detail || error.message}`, {kind: 'error'});
      busy(false);
    }
  });
  run.addEventListener('click', async () => {
    busy(true);
    try {
      const job = await post(ws(`/schedules/${schedule.id}/trigger`));
      toast(`${schedule.name}: job ${shortId(job.id)} created`, {
        kind: 'success', action: h('a', {class: 'toast-link', href: `#/jobs/${job.id}`}, 'Open'),
      });
      changed();
    } catch (error) {
      toast(`Could not run ${schedule.name}: ${error.detail || error.message}`, {kind: 'error'});
    } finally {
      busy(false);
    }
  });
  remove.addEventListener('click', async () => {
    const sure = await confirmDialog({
      title: `Delete ${schedule.name}?`,
      body: 'It fires no more and its history goes; the jobs it made stay. This cannot be undone.',
      confirm: 'Delete schedule', cancel: 'Keep it', danger: true,
    });
    if (!sure) {
      remove.focus();
      return;
    }
    busy(true);
    try {
      await del(ws(`/schedules/${schedule.id}`));
      toast(`${schedule.name} deleted`, {kind: 'success'});
      if (onDeleted) onDeleted();
      else changed();
    } catch (error) {
      toast(`Could not delete ${schedule.name}: ${error.detail || error.message}`, {kind: 'error'});
      busy(false);
    }
  });
  return h('div', {class: 'row-actions'}, edit, toggle, run, remove);
}

const PRIORITIES = Array.from({length: 10}, (_, index) => index + 1);

/**
 * The fields of a schedule's rule (cron, time zone, overlap, catch up) and of the job each
 * tick makes, ids prefixed with `prefix`, filled from `schedule` (none: a new one's
 * defaults). `read(fail)` checks them and answers them as the API takes them, or calls
 * `fail` and answers undefined; `show(schedule)` fills them again; `byField` names each
 * control by the API's name for it, for the problems the server finds.
 */
function scheduleFields(prefix, schedule = null) {
  const id = (name) => `${prefix}-${name}`;
  const text = (name, props = {}) => h('input', {id: id(name), class: 'input input-wide', autocomplete: 'off', spellcheck: 'false', ...props});
  const cron = text('cron', {class: 'input input-wide mono', required: true, maxlength: '200', placeholder: '*/5 * * * *', 'aria-describedby': `${id('cron')}-help`});
  const timezone = text('timezone', {maxlength: '64'});
  const type = text('type', {class: 'input input-wide mono', required: true, maxlength: '100', placeholder: 'report.build'});
  const payload = h('textarea', {id: id('payload'), class: 'input input-wide mono textarea', rows: '3', spellcheck: 'false'});
  const priority = h('select', {id: id('priority'), class: 'input'},
    PRIORITIES.map((value) => h('option', {value: String(value)}, String(value))));
  const attempts = h('input', {id: id('attempts'), class: 'input', type: 'number', min: '1', step: '1', inputmode: 'numeric'});
  const timeout = h('input', {id: id('timeout'), class: 'input', type: 'number', min: '0', step: 'any', inputmode: 'decimal', placeholder: 'none'});
  const concurrencyKey = text('concurrency-key', {class: 'input input-wide mono', maxlength: '200', placeholder: 'none'});
  const overlap = h('select', {id: id('overlap'), class: 'input'},
    h('option', {value: 'allow'}, 'Allow'), h('option', {value: 'skip'}, 'Skip while running'));
  const catchUp = h('select', {id: id('catch-up'), class: 'input'},
    h('option', {value: 'none'}, 'None'), h('option', {value: 'latest'}, 'Latest missed tick'));

  function show(current) {
    cron.value = current ? current.cron : '';
    timezone.value = current ? current.timezone : browserZone();
    type.value = current ? current.job.type : '';
    payload.value = current ? JSON.stringify(current.job.payload, null, 2) : '{}';
    priority.value = String(current ? current.job.priority : 5);
    attempts.value = String(current ? current.job.max_attempts : 1);
    timeout.value = current && current.job.timeout_seconds !== null ? String(current.job.timeout_seconds) : '';
    concurrencyKey.value = current && current.job.concurrency_key !== null ? current.job.concurrency_key : '';
    overlap.value = current ? current.overlap : 'allow';
    catchUp.value = current ? current.catch_up : 'none';
  }
  show(schedule);

  function read(fail) {
    if (!cron.value.trim()) {
      fail('Give a cron expression, like */5 * * * * or @daily.', cron);
      return undefined;
    }
    if (!JOB_TYPE.test(type.value.trim())) {
      fail(`The job type ${JOB_TYPE_HINT}`, type);
      return undefined;
    }
    let body;
    try {
      body = payload.value.trim() ? parseJson(payload.value) : {};
    } catch (problem) {
      fail(`The payload is not valid JSON: ${problem.message}`, payload);
      return undefined;
    }
    const maxAttempts = Number(attempts.value.trim() || 1);
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      fail('Max attempts must be a whole number, 1 or more.', attempts);
      return undefined;
    }
    const timeoutText = timeout.value.trim();
    const timeoutSeconds = timeoutText ? Number(timeoutText) : null;
    if (timeoutText && !(timeoutSeconds > 0)) {
      fail('The timeout must be a number of seconds, more than 0 (or empty: none).', timeout);
      return undefined;
    }
    return {
      cron: cron.value.trim(),
      timezone: timezone.value.trim() || 'UTC',
      job: {
        type: type.value.trim(), payload: body, priority: Number(priority.value), max_attempts: maxAttempts,
        timeout_seconds: timeoutSeconds, concurrency_key: concurrencyKey.value.trim() || null,
      },
      overlap: overlap.value,
      catch_up: catchUp.value,
    };
  }

  const rows = {
    rule: [
      field(id('cron'), 'Cron', cron, '5 fields (minute hour day month weekday) or @hourly, @daily…'),
      field(id('timezone'), 'Time zone', timezone),
    ],
    job: [
      field(id('type'), 'Job type', type),
      field(id('priority'), 'Priority', priority),
      field(id('overlap'), 'Overlap', overlap),
      field(id('catch-up'), 'Catch up', catchUp),
    ],
    limits: [
      field(id('attempts'), 'Max attempts', attempts),
      field(id('timeout'), 'Timeout in seconds', timeout),
      field(id('concurrency-key'), 'Concurrency key', concurrencyKey),
    ],
    payload: field(id('payload'), 'Payload (JSON)', payload),
  };
  const byField = {
    cron, timezone, overlap, catch_up: catchUp,
    'job.type': type, 'job.payload': payload, 'job.priority': priority, 'job.max_attempts': attempts,
    'job.timeout_seconds': timeout, 'job.concurrency_key': concurrencyKey,
  };
  return {rows, byField, read, show, focus: cron};
}

function createForm(onCreated) {
  const name = h('input', {id: 'schedule-name', class: 'input input-wide', required: true, maxlength: '100', autocomplete: 'off', placeholder: 'nightly-report'});
  const fields = scheduleFields('schedule');
  const error = formError('schedule-error');
  const submit = h('button', {class: 'button button-primary', type: 'submit', 'data-testid': 'create-schedule'}, icon('plus'), h('span', {}, 'Create schedule'));
  const form = h('form', {class: 'card schedule-form', novalidate: true, 'aria-labelledby': 'new-schedule-title', 'data-testid': 'schedule-form'},
    h('h2', {id: 'new-schedule-title', class: 'card-title'}, 'New schedule'),
    h('div', {class: 'field-row'}, field('schedule-name', 'Name', name), fields.rows.rule),
    h('div', {class: 'field-row'}, fields.rows.job),
    h('div', {class: 'field-row'}, fields.rows.limits),
    fields.rows.payload,
    error,
    h('div', {class: 'form-actions'}, submit));
  function prepare(fail) {
    if (!NAME_PATTERN.test(name.value.trim())) {
      fail('The name must be 1 to 100 characters of letters, digits, _ . -, starting with a letter or digit.', name);
      return undefined;
    }
    const wanted = fields.read(fail);
    if (!wanted) return undefined;
    // A new schedule's job leaves out what it does not set: the server's defaults apply.
    const job = Object.fromEntries(Object.entries(wanted.job).filter(([, value]) => value !== null));
    return {name: name.value.trim(), ...wanted, job};
  }
  handleSubmit({
    form, submit, error, prepare,
    fields: {name, ...fields.byField},
    send: (request) => post(ws('/schedules'), request),
    done: (created) => {
      name.value = '';
      fields.show(null);
      onCreated(created);
    },
  });
  return form;
}

/** What an edit changes of `schedule`: the rule's fields that differ, and the job's (a
 * PATCH leaves out what stays as it is; a cron or time zone sent as it was would still
 * start the ticks afresh). Empty when nothing changed. */
function changesOf(schedule, wanted) {
  const changes = {};
  for (const name of ['cron', 'timezone', 'overlap', 'catch_up']) {
    if (wanted[name] !== schedule[name]) changes[name] = wanted[name];
  }
  const job = {};
  for (const [name, value] of Object.entries(wanted.job)) {
    if (JSON.stringify(value) !== JSON.stringify(schedule.job[name])) job[name] = value;
  }
  if (Object.keys(job).length) changes.job = job;
  return changes;
}

/** Edit a schedule's rule and job; resolves with the schedule saved, or null. The change
 * is saved only over the version the dialog shows: one made elsewhere meanwhile (a 409)
 * is shown in the fields, not overwritten. */
export function openScheduleDialog(schedule) {
  let shown = schedule;
  const fields = scheduleFields('edit-schedule', schedule);
  const path = ws(`/schedules/${segment(schedule.id)}`);

  async function save(changes) {
    try {
      return await patch(path, {...changes, expected_version: shown.version});
    } catch (refusal) {
      if (refusal.status !== 409) throw refusal;
      shown = await get(path);
      fields.show(shown);
      throw new Error(`Not saved: schedule ${schedule.name} was changed elsewhere while this was open. The fields show it as it is now; make your change again.`);
    }
  }

  return openFormDialog({
    titleId: 'schedule-dialog-title',
    title: `Edit schedule ${schedule.name}`,
    testid: 'schedule-dialog',
    errorTestid: 'schedule-dialog-error',
    submitLabel: 'Save schedule',
    submitTestid: 'save-schedule',
    content: [
      h('div', {class: 'field-row'}, fields.rows.rule),
      h('p', {class: 'help schedule-retime-help'}, 'A new cron or time zone starts its ticks afresh from now.'),
      h('div', {class: 'field-row'}, fields.rows.job),
      h('div', {class: 'field-row'}, fields.rows.limits),
      fields.rows.payload,
    ],
    focus: fields.focus,
    fields: fields.byField,
    prepare(fail) {
      const wanted = fields.read(fail);
      if (!wanted) return undefined;
      const changes = changesOf(shown, wanted);
      if (!Object.keys(changes).length) {
        fail('Nothing to save: no field differs from the schedule as it is.');
        return undefined;
      }
      return changes;
    },
    send: save,
  });
}

export function mountSchedules(main, {query}) {
  document.title = 'Schedules · Conveyor';
  let stopped = false;
  const paging = readPaging(query);
  const listBox = h('div', {class: 'card card-flush'}, h('p', {class: 'muted pad'}, 'Loading…'));
  const pager = makePager({
    limit: paging.limit,
    onPage: (number) => { paging.page = number; changed(); },
    onSize: (limit) => { Object.assign(paging, {page: 1, limit}); changed(); },
  });

  function changed() {
    const params = new URLSearchParams();
    writePaging(params, paging);
    const text = params.toString();
    history.replaceState(null, '', `#/schedules${text ? `?${text}` : ''}`);
    load();
  }

  function render(schedules) {
    if (!schedules.length) {
      replace(listBox, emptyState('No schedules', can('manage_schedules') ? 'Create one above: it makes a job at every tick.' : null));
      return;
    }
    replace(listBox, h('div', {class: 'table-wrap'}, h('table', {class: 'table table-stack table-schedules', 'data-testid': 'schedules-table'},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Name'), h('th', {scope: 'col'}, 'When'), h('th', {scope: 'col'}, 'Job type'),
        h('th', {scope: 'col'}, 'Next runs'), h('th', {scope: 'col'}, 'Last run'), h('th', {scope: 'col'}, 'State'),
        h('th', {scope: 'col'}, h('span', {class: 'sr-only'}, 'Actions')))),
      h('tbody', {}, schedules.map((schedule) => h('tr', {'data-testid': 'schedule-row', 'data-schedule-id': schedule.id, 'data-name': schedule.name},
        h('td', {class: 'cell-name'}, h('a', {class: 'schedule-link', href: `#/schedules/${schedule.id}`}, schedule.name)),
        h('td', {'data-label': 'When', class: 'cell-when'}, h('code', {class: 'cron'}, schedule.cron), h('span', {class: 'muted zone'}, ` ${schedule.timezone}`)),
        h('td', {'data-label': 'Job type', class: 'mono cell-type'}, schedule.job.type),
        h('td', {'data-label': 'Next runs', class: 'cell-next'}, upcomingList(schedule)),
        h('td', {'data-label': 'Last run', class: 'cell-last'}, schedule.last_job_id
          ? h('a', {href: `#/jobs/${schedule.last_job_id}`, 'data-testid': 'last-job'}, timeAgo(schedule.last_run_at))
          : h('span', {class: 'muted'}, 'never')),
        h('td', {'data-label': 'State', class: 'cell-state'}, stateBadge(schedule)),
        h('td', {class: 'actions'}, actionButtons(schedule, load))))))));
  }

  async function load() {
    try {
      const found = await get(ws('/schedules'), {query: {page: paging.page, limit: paging.limit}});
      if (stopped) return;
      if (found.meta.total_pages && paging.page > found.meta.total_pages) {
        // the page emptied (its schedules were deleted): go to the last one that has rows
        paging.page = found.meta.total_pages;
        changed();
        return;
      }
      render(found.data);
      pager.show(found.meta);
    } catch (error) {
      if (!stopped) replace(listBox, errorBox(error, {retry: load}));
    }
  }

  main.append(h('div', {class: 'page'},
    h('div', {class: 'page-head'}, h('div', {},
      h('h1', {class: 'page-title', tabindex: '-1'}, 'Schedules'),
      h('p', {class: 'page-subtitle'}, 'Cron rules that create jobs. Each tick makes one job, whichever server fires it.'))),
    can('manage_schedules') ? createForm((created) => {
      toast(`Schedule ${created.name} created`, {kind: 'success'});
      load();
    }) : null,
    h('h2', {class: 'section-title'}, 'All schedules'), listBox, pager.element));
  load();
  return () => { stopped = true; };
}

export function mountSchedule(main, {params, query}) {
  const [id] = params;
  const cursor = query.get('cursor');
  document.title = 'Schedule · Conveyor';
  let stopped = false;
  const body = h('div', {class: 'page'}, h('p', {class: 'muted'}, 'Loading…'));
  main.append(body);

  function facts(schedule) {
    const rows = [
      ['Cron', h('span', {}, h('code', {class: 'cron'}, schedule.cron), ` in ${schedule.timezone}`)],
      ['Job', h('span', {}, h('span', {class: 'mono'}, schedule.job.type), ` · priority ${schedule.job.priority} · ${schedule.job.max_attempts} attempt(s)`)],
      ['Timeout', schedule.job.timeout_seconds === null ? 'none' : `${schedule.job.timeout_seconds} s per attempt`],
      ['Concurrency key', schedule.job.concurrency_key === null ? 'none' : h('span', {class: 'mono'}, schedule.job.concurrency_key)],
      ['Payload', h('code', {class: 'mono payload'}, JSON.stringify(schedule.job.payload))],
      ['Overlap', schedule.overlap === 'skip' ? 'skip a tick while the previous run is unfinished' : 'allow'],
      ['Catch up', schedule.catch_up === 'latest' ? 'run the latest missed tick once' : 'none (missed ticks are skipped)'],
      ['Last skipped', schedule.last_skipped_at ? h('span', {}, timeAgo(schedule.last_skipped_at), ` (${schedule.last_skip_reason})`) : '—'],
    ];
    return h('dl', {class: 'facts'}, rows.map(([label, value]) => [h('dt', {}, label), h('dd', {}, value)]));
  }

  function runsTable(schedule, runs) {
    if (!runs.length && cursor) return emptyState('No older runs', null);
    if (!runs.length) return emptyState('No runs yet', 'Its first tick is its first run.');
    return h('div', {class: 'table-wrap'}, h('table', {class: 'table table-stack table-runs', 'data-testid': 'runs-table'},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Tick'), h('th', {scope: 'col'}, 'What happened'), h('th', {scope: 'col'}, 'Job'), h('th', {scope: 'col'}, 'Status'))),
      h('tbody', {}, runs.map((run) => h('tr', {'data-testid': 'run-row', 'data-outcome': run.outcome},
        h('td', {'data-label': 'Tick'}, run.tick ? scheduleTime(run.tick, schedule) : h('span', {class: 'muted'}, scheduleTime(run.created_at, schedule))),
        h('td', {'data-label': 'What happened'}, OUTCOMES[run.outcome] || run.outcome),
        h('td', {'data-label': 'Job', class: 'mono'}, run.job_id
          ? h('a', {href: `#/jobs/${run.job_id}`, 'data-testid': 'run-job', title: run.job_id}, `…${shortId(run.job_id)}`)
          : h('span', {class: 'muted'}, '—')),
        h('td', {'data-label': 'Status'}, run.job_status ? statusBadge(run.job_status) : h('span', {class: 'muted'}, '—')))))));
  }

  // The runs page by cursor (a schedule's history may be long, and runs recorded while it
  // is read must not shift it): the position is in the view's URL (`?cursor=…`), so a
  // reload or a shared link shows the same runs.
  function runsPager(schedule, meta) {
    const here = `#/schedules/${segment(schedule.id)}`;
    const newest = cursor
      ? h('a', {class: 'button', href: here, 'data-testid': 'newest-runs'}, icon('chevronLeft'), h('span', {}, 'Newest runs'))
      : null;
    const older = meta.next_cursor
      ? h('a', {class: 'button', href: `${here}?cursor=${encodeURIComponent(meta.next_cursor)}`, 'data-testid': 'older-runs'},
        h('span', {}, 'Older runs'), icon('chevronRight'))
      : null;
    if (!newest && !older) return null;
    return h('nav', {class: 'pager', 'aria-label': 'Runs pages'},
      h('span', {class: 'pager-info'}, cursor ? 'Older runs, newest first' : 'Newest runs'),
      h('div', {class: 'pager-buttons'}, newest, older));
  }

  function render(schedule, runs, meta) {
    document.title = `${schedule.name} · Schedules · Conveyor`;
    replace(body,
      h('p', {class: 'breadcrumb'}, h('a', {href: '#/schedules'}, 'Schedules'), ' / ', schedule.name),
      h('div', {class: 'page-head'},
        h('div', {}, h('h1', {class: 'page-title', tabindex: '-1'}, schedule.name, ' ', stateBadge(schedule)),
          h('p', {class: 'page-subtitle mono'}, schedule.id)),
        h('div', {class: 'page-actions'}, actionButtons(schedule, load, {onDeleted: () => { location.hash = '#/schedules'; }}))),
      h('div', {class: 'grid-2'},
        h('section', {class: 'card', 'aria-labelledby': 'schedule-facts-title'},
          h('h2', {class: 'card-title', id: 'schedule-facts-title'}, 'Rule'), facts(schedule)),
        h('section', {class: 'card', 'aria-labelledby': 'schedule-next-title'},
          h('h2', {class: 'card-title', id: 'schedule-next-title'}, 'Next runs'),
          upcomingList(schedule, {limit: 5}))),
      h('h2', {class: 'section-title'}, 'Runs and the jobs they made'),
      h('div', {class: 'card card-flush'}, runsTable(schedule, runs)),
      runsPager(schedule, meta));
  }

  async function load() {
    try {
      const [schedule, runs] = await Promise.all([
        get(ws(`/schedules/${id}`)),
        get(ws(`/schedules/${id}/runs`), cursor ? {query: {cursor}} : {}),
      ]);
      if (!stopped) render(schedule, runs.data, runs.meta);
    } catch (error) {
      if (!stopped) {
        replace(body, h('h1', {class: 'page-title', tabindex: '-1'}, 'Schedule'), errorBox(error, {retry: load}),
          h('p', {}, h('a', {href: '#/schedules'}, 'All schedules')));
      }
    }
  }

  load();
  return () => { stopped = true; };
}
