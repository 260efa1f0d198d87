// Schedules: cron rules that create jobs. The list shows each one's next fire times (the
// server computes them: `upcoming`) with Pause/Resume, Run now and Delete for roles that
// may manage them, and a form to create one; a schedule's page shows what its ticks did
// and links the jobs they made. Times of a schedule are shown in its own time zone, named
// (its cron's fields are wall-clock times there), the browser's own in their title.

import {can, del, get, patch, post, ws} from '../api.js';
import {h, icon, replace} from '../dom.js';
import {exact, JOB_TYPE, JOB_TYPE_HINT, shortId} from '../format.js';
import {field, formError, handleSubmit} from '../forms.js';
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
  const toggle = h('button', {class: 'button button-small', type: 'button', 'data-testid': schedule.paused ? 'resume' : 'pause'},
    icon(schedule.paused ? 'play' : 'stop'), h('span', {}, schedule.paused ? 'Resume' : 'Pause'));
  const run = h('button', {class: 'button button-small', type: 'button', 'data-testid': 'trigger', 'aria-label': `Run ${schedule.name} now`},
    icon('play'), h('span', {}, 'Run now'));
  const remove = h('button', {class: 'button button-small button-danger-ghost', type: 'button', 'data-testid': 'delete', 'aria-label': `Delete ${schedule.name}`}, 'Delete');
  const busy = (on) => { for (const button of [toggle, run, remove]) button.disabled = on; };
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
  return h('div', {class: 'row-actions'}, toggle, run, remove);
}

function createForm(onCreated) {
  const name = h('input', {id: 'schedule-name', class: 'input input-wide', required: true, maxlength: '100', autocomplete: 'off', placeholder: 'nightly-report'});
  const cron = h('input', {id: 'schedule-cron', class: 'input input-wide mono', required: true, maxlength: '200', autocomplete: 'off', spellcheck: 'false', placeholder: '*/5 * * * *', 'aria-describedby': 'schedule-cron-help'});
  const zone = h('input', {id: 'schedule-timezone', class: 'input input-wide', maxlength: '64', autocomplete: 'off', spellcheck: 'false', value: browserZone()});
  const type = h('input', {id: 'schedule-type', class: 'input input-wide mono', required: true, maxlength: '100', autocomplete: 'off', spellcheck: 'false', placeholder: 'report.build'});
  const payload = h('textarea', {id: 'schedule-payload', class: 'input input-wide mono textarea', rows: '3', spellcheck: 'false'});
  payload.value = '{}';
  const priority = h('select', {id: 'schedule-priority', class: 'input'},
    Array.from({length: 10}, (_, index) => h('option', {value: String(index + 1), selected: index + 1 === 5}, String(index + 1))));
  const overlap = h('select', {id: 'schedule-overlap', class: 'input'},
    h('option', {value: 'allow'}, 'Allow'), h('option', {value: 'skip'}, 'Skip while running'));
  const catchUp = h('select', {id: 'schedule-catch-up', class: 'input'},
    h('option', {value: 'none'}, 'None'), h('option', {value: 'latest'}, 'Latest missed tick'));
  const error = formError('schedule-error');
  const submit = h('button', {class: 'button button-primary', type: 'submit', 'data-testid': 'create-schedule'}, icon('plus'), h('span', {}, 'Create schedule'));
  const form = h('form', {class: 'card schedule-form', novalidate: true, 'aria-labelledby': 'new-schedule-title', 'data-testid': 'schedule-form'},
    h('h2', {id: 'new-schedule-title', class: 'card-title'}, 'New schedule'),
    h('div', {class: 'field-row'},
      field('schedule-name', 'Name', name),
      field('schedule-cron', 'Cron', cron, '5 fields (minute hour day month weekday) or @hourly, @daily…'),
      field('schedule-timezone', 'Time zone', zone)),
    h('div', {class: 'field-row'},
      field('schedule-type', 'Job type', type),
      field('schedule-priority', 'Priority', priority),
      field('schedule-overlap', 'Overlap', overlap),
      field('schedule-catch-up', 'Catch up', catchUp)),
    field('schedule-payload', 'Payload (JSON)', payload),
    error,
    h('div', {class: 'form-actions'}, submit));
  function prepare(fail) {
    if (!NAME_PATTERN.test(name.value.trim())) {
      fail('The name must be 1 to 100 characters of letters, digits, _ . -, starting with a letter or digit.', name);
      return undefined;
    }
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
      body = payload.value.trim() ? JSON.parse(payload.value) : {};
    } catch (problem) {
      fail(`The payload is not valid JSON: ${problem.message}`, payload);
      return undefined;
    }
    return {
      name: name.value.trim(), cron: cron.value.trim(), timezone: zone.value.trim() || 'UTC',
      job: {type: type.value.trim(), payload: body, priority: Number(priority.value)},
      overlap: overlap.value, catch_up: catchUp.value,
    };
  }
  handleSubmit({
    form, submit, error, prepare,
    controls: [name, cron, zone, type, payload],
    fields: {name, cron, timezone: zone, 'job.type': type, 'job.payload': payload},
    send: (request) => post(ws('/schedules'), request),
    done: (created) => {
      name.value = '';
      cron.value = '';
      onCreated(created);
    },
  });
  return form;
}

export function mountSchedules(main) {
  document.title = 'Schedules · Conveyor';
  let stopped = false;
  const listBox = h('div', {class: 'card card-flush'}, h('p', {class: 'muted pad'}, 'Loading…'));

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
      const found = await get(ws('/schedules'));
      if (!stopped) render(found.data);
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
    h('h2', {class: 'section-title'}, 'All schedules'), listBox));
  load();
  return () => { stopped = true; };
}

export function mountSchedule(main, {params}) {
  const [id] = params;
  document.title = 'Schedule · Conveyor';
  let stopped = false;
  const body = h('div', {class: 'page'}, h('p', {class: 'muted'}, 'Loading…'));
  main.append(body);

  function facts(schedule) {
    const rows = [
      ['Cron', h('span', {}, h('code', {class: 'cron'}, schedule.cron), ` in ${schedule.timezone}`)],
      ['Job', h('span', {}, h('span', {class: 'mono'}, schedule.job.type), ` · priority ${schedule.job.priority} · ${schedule.job.max_attempts} attempt(s)`)],
      ['Payload', h('code', {class: 'mono payload'}, JSON.stringify(schedule.job.payload))],
      ['Overlap', schedule.overlap === 'skip' ? 'skip a tick while the previous run is unfinished' : 'allow'],
      ['Catch up', schedule.catch_up === 'latest' ? 'run the latest missed tick once' : 'none (missed ticks are skipped)'],
      ['Last skipped', schedule.last_skipped_at ? h('span', {}, timeAgo(schedule.last_skipped_at), ` (${schedule.last_skip_reason})`) : '—'],
    ];
    return h('dl', {class: 'facts'}, rows.map(([label, value]) => [h('dt', {}, label), h('dd', {}, value)]));
  }

  function runsTable(schedule, runs) {
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

  function render(schedule, runs) {
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
      h('div', {class: 'card card-flush'}, runsTable(schedule, runs)));
  }

  async function load() {
    try {
      const [schedule, runs] = await Promise.all([get(ws(`/schedules/${id}`)), get(ws(`/schedules/${id}/runs`))]);
      if (!stopped) render(schedule, runs.data);
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
