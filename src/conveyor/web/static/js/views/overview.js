// The workspace at a glance: jobs by status and by type, throughput over the last hour,
// the workers seen (with the types they serve, and whether they are still there), how long
// the oldest queued job has waited, and a warning for queued jobs that no live worker serves.
// Fields an older server does not send (`unserved_types`, a worker's `state` and `types`)
// are left out, and the page shows what it did before them.

import {get, session, ws} from '../api.js';
import {throughputChart} from '../chart.js';
import {h, icon, replace} from '../dom.js';
import {clock, count, duration, exact, plural, STATUSES, titleCase} from '../format.js';
import {onWorkspaceEvent} from '../live.js';
import {emptyState, errorBox, throttle, timeAgo} from '../ui.js';

const POLL_MS = 5000;
const ACTIVE_WORKER_S = 60;

export function mountOverview(main) {
  document.title = 'Overview · Conveyor';
  const updated = h('span', {class: 'muted', 'data-testid': 'updated'});
  const refresh = h('button', {class: 'button', type: 'button'}, icon('refresh'), h('span', {}, 'Refresh'));
  const body = h('div', {class: 'overview', 'aria-busy': 'true'}, h('p', {class: 'muted'}, 'Loading…'));
  main.append(h('div', {class: 'page'},
    h('div', {class: 'page-head'},
      h('div', {},
        h('h1', {class: 'page-title', tabindex: '-1'}, 'Overview'),
        h('p', {class: 'page-subtitle'}, 'Workspace ', h('strong', {}, session().workspace.slug), ' · ', updated)),
      h('div', {class: 'page-actions'}, refresh, h('a', {class: 'button button-primary', href: '#/jobs'}, 'All jobs'))),
    body));

  let stopped = false;
  let timer = null;
  let controller = null;
  let loaded = false;

  async function load() {
    clearTimeout(timer);
    if (controller) controller.abort();
    const mine = new AbortController();
    controller = mine;
    try {
      const stats = await get(ws('/stats'), {signal: mine.signal});
      if (stopped) return;
      render(body, stats);
      loaded = true;
      replace(updated, 'updated ', timeAgo(new Date().toISOString()));
    } catch (error) {
      if (stopped || error.name === 'AbortError') return;
      if (!loaded) replace(body, errorBox(error, {retry: load}));
      else replace(updated, h('span', {class: 'text-error'}, `update failed: ${error.detail || error.message}`));
    } finally {
      if (controller === mine && !stopped) {
        body.setAttribute('aria-busy', 'false');
        clearTimeout(timer);
        timer = setTimeout(load, POLL_MS);
      }
    }
  }

  // Job events change the numbers: refresh soon (the server caches stats for ~2 s).
  const soon = throttle(load, 2000);
  const unsubscribe = onWorkspaceEvent((type) => {
    if (type.startsWith('job.') && type !== 'job.progress') soon();
  });
  refresh.addEventListener('click', load);
  load();

  return () => {
    stopped = true;
    clearTimeout(timer);
    soon.cancel();
    unsubscribe();
    if (controller) controller.abort();
  };
}

function render(body, stats) {
  const byStatus = stats.by_status || {};
  const total = STATUSES.reduce((sum, status) => sum + (byStatus[status] || 0), 0);
  const cards = h('section', {class: 'status-cards', 'aria-label': 'Jobs by status'},
    STATUSES.map((status) => h('a', {
      class: ['stat-card', `status-${status.toLowerCase()}`], href: `#/jobs?status=${status}`,
      'data-testid': `count-${status}`, 'aria-label': `${titleCase(status)}: ${count(byStatus[status] || 0)} jobs`,
    },
    h('span', {class: 'stat-label'}, titleCase(status)),
    h('span', {class: 'stat-value'}, count(byStatus[status] || 0)))));

  const chart = throughputChart(stats.throughput);
  const finished = chart.totals.completed + chart.totals.failed + chart.totals.cancelled;
  const throughput = h('section', {class: 'card card-chart', 'aria-labelledby': 'throughput-title'},
    h('div', {class: 'card-head'},
      h('h2', {id: 'throughput-title', class: 'card-title'}, 'Throughput, last hour'),
      chart.legend),
    chart.svg);

  const workers = stats.workers || [];
  const active = workers.filter((worker) => workerState(worker) === 'active');
  const age = stats.oldest_queued_age_seconds;
  const health = h('section', {class: 'card card-health', 'aria-labelledby': 'health-title'},
    h('h2', {id: 'health-title', class: 'card-title'}, 'Queue health'),
    h('dl', {class: 'kpis'},
      kpi('Oldest queued job', age === null || age === undefined ? 'none waiting' : duration(age * 1000),
        age > 300 ? 'bad' : age > 60 ? 'warn' : 'good', 'oldest-queued',
        stats.oldest_queued_at ? `waiting since ${clock(stats.oldest_queued_at)}` : 'the queue is empty'),
      kpi('Waiting (pending + queued)', count((byStatus.PENDING || 0) + (byStatus.QUEUED || 0)), null, 'waiting'),
      kpi('Workers active', `${active.length} of ${workers.length}`, workers.length && !active.length ? 'warn' : null,
        'workers-active', workers.some((worker) => worker.state) ? 'reporting within their lease' : `heard from in the last ${ACTIVE_WORKER_S} s`),
      kpi('Finished last hour', count(finished), null, 'finished',
        finished ? `${Math.round((chart.totals.failed / finished) * 100)}% failed` : 'nothing finished yet'),
      kpi('Jobs in total', count(total), null, 'total')));

  // The numbers are redrawn every few seconds: keep keyboard focus where it was.
  const focused = document.activeElement;
  let again = null;
  if (focused && focused !== body && body.contains(focused)) {
    if (focused.dataset.testid) again = `[data-testid="${CSS.escape(focused.dataset.testid)}"]`;
    else if (focused.getAttribute('href')) again = `a[href="${CSS.escape(focused.getAttribute('href'))}"]`;
  }
  replace(body, unservedCard(stats.unserved_types), cards, h('div', {class: 'grid-2 grid-chart'}, throughput, health),
    h('div', {class: 'grid-2 grid-tables'}, typesTable(stats.counts || []), workersTable(workers)));
  if (again) {
    const target = body.querySelector(again);
    if (target) target.focus({preventScroll: true});
  }
}

/** Due jobs that will sit there: no live worker claims their type (jobs whose run_at is
 * still ahead are not counted: they wait for their time, not for a worker). */
function unservedCard(unserved) {
  if (!Array.isArray(unserved) || !unserved.length) return null;
  return h('section', {class: 'card card-warning', 'aria-labelledby': 'unserved-title', 'data-testid': 'unserved-types'},
    h('h2', {id: 'unserved-title', class: 'card-title'}, 'Due jobs that no worker will run'),
    h('ul', {class: 'unserved-list'}, unserved.map((item) => h('li', {'data-testid': 'unserved-type', 'data-type': item.type},
      h('a', {href: `#/jobs?status=QUEUED&type=${encodeURIComponent(item.type)}`}, plural(item.queued, 'due job')),
      ' of type ', h('code', {}, item.type), ' — no live worker serves this type.',
      item.type === 'command'
        ? h('span', {class: 'muted'}, ' Command jobs run only on workers started with ', h('code', {}, '--allow-command-jobs'), '.')
        : null))),
    h('p', {class: 'help'}, 'Start a worker whose handlers serve these types, or cancel the jobs.'));
}

function kpi(label, value, tone, testid, note) {
  return h('div', {class: ['kpi', tone ? `kpi-${tone}` : null]},
    h('dt', {}, label),
    h('dd', {'data-testid': testid}, h('span', {class: 'kpi-value'}, value), note ? h('span', {class: 'kpi-note'}, note) : null));
}

function typesTable(counts) {
  const types = new Map();
  for (const row of counts) {
    if (!types.has(row.type)) types.set(row.type, {});
    types.get(row.type)[row.status] = (types.get(row.type)[row.status] || 0) + row.count;
  }
  const rows = [...types.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  const section = h('section', {class: 'card', 'aria-labelledby': 'types-title'},
    h('h2', {id: 'types-title', class: 'card-title'}, 'Jobs by type'));
  if (!rows.length) {
    section.append(emptyState('No jobs yet', 'Jobs created in this workspace are counted here.'));
    return section;
  }
  section.append(h('div', {class: 'table-wrap'}, h('table', {class: 'table table-compact', 'data-testid': 'types-table'},
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'Type'),
      STATUSES.map((status) => h('th', {scope: 'col', class: 'num'}, titleCase(status))),
      h('th', {scope: 'col', class: 'num'}, 'Total'))),
    h('tbody', {}, rows.map(([type, byStatus]) => h('tr', {},
      h('th', {scope: 'row'}, h('a', {href: `#/jobs?type=${encodeURIComponent(type)}`, class: 'mono'}, type)),
      STATUSES.map((status) => h('td', {class: ['num', byStatus[status] ? `count-${status.toLowerCase()}` : 'zero']}, count(byStatus[status] || 0))),
      h('td', {class: 'num strong'}, count(Object.values(byStatus).reduce((a, b) => a + b, 0)))))))));
  return section;
}

/** 'active' or 'stopped' as the server says; from an older server, by the last heartbeat:
 * 'active' within a minute, 'quiet' within ten, else 'gone'. */
function workerState(worker, now = Date.now()) {
  if (worker.state) return worker.state;
  const seconds = (now - new Date(worker.last_seen_at).getTime()) / 1000;
  return seconds < ACTIVE_WORKER_S ? 'active' : seconds < 600 ? 'quiet' : 'gone';
}

function workerTypes(types) {
  if (!types.length) return h('span', {class: 'muted', title: 'it claims jobs of every type'}, 'any type');
  return h('span', {class: 'worker-types'}, types.map((type) => h('code', {class: 'type-tag'}, type)));
}

function workersTable(workers) {
  const section = h('section', {class: 'card', 'aria-labelledby': 'workers-title'},
    h('h2', {id: 'workers-title', class: 'card-title'}, 'Workers'));
  if (!workers.length) {
    section.append(emptyState('No workers seen yet', 'A worker appears here once it claims or reports on a job.'));
    return section;
  }
  // Stopped workers last; the rest by their last heartbeat.
  const now = Date.now();
  const rank = (worker) => (workerState(worker, now) === 'stopped' ? 1 : 0);
  const sorted = [...workers].sort((a, b) => rank(a) - rank(b) || new Date(b.last_seen_at) - new Date(a.last_seen_at));
  const withTypes = workers.some((worker) => Array.isArray(worker.types));
  section.append(h('div', {class: 'table-wrap'}, h('table', {class: 'table table-compact table-stack', 'data-testid': 'workers-table'},
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'Worker'),
      withTypes ? h('th', {scope: 'col'}, 'Types') : null,
      h('th', {scope: 'col', class: 'num'}, 'Running'),
      h('th', {scope: 'col'}, 'Last heartbeat'),
      // Types take the room of "first seen", which moves into the heartbeat's tooltip.
      withTypes ? null : h('th', {scope: 'col'}, 'First seen'))),
    h('tbody', {}, sorted.map((worker) => {
      const state = workerState(worker, now);
      return h('tr', {class: `worker-${state}`, 'data-testid': 'worker-row', 'data-worker-id': worker.worker_id, 'data-state': state},
        h('th', {scope: 'row'}, h('span', {class: 'worker-dot', title: state, 'aria-hidden': 'true'}),
          h('span', {class: 'mono'}, worker.worker_id),
          state === 'stopped' ? h('span', {class: 'tag worker-state'}, 'stopped') : h('span', {class: 'sr-only'}, ` (${state})`)),
        withTypes ? h('td', {class: 'cell-wide', 'data-label': 'Types'}, workerTypes(worker.types || [])) : null,
        h('td', {class: 'num', 'data-label': 'Running'}, count(worker.running)),
        h('td', {'data-label': 'Last heartbeat', title: withTypes ? `first seen ${exact(worker.first_seen_at)}` : null},
          timeAgo(worker.last_seen_at)),
        withTypes ? null : h('td', {'data-label': 'First seen'}, timeAgo(worker.first_seen_at)));
    })))));
  return section;
}
