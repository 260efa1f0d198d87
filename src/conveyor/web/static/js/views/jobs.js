// The job list: filters (kept in the URL), pagination, live updates from the workspace
// stream, and the "new job" dialog for roles that may create. Filtered to failed jobs, it
// shows each job's error. "Select all matching" cancels or retries every job the filters
// match (not just the page), after a confirmation that says how many and which filters; any
// change to the filters ends the selection.

import {can, get, post, ws} from '../api.js';
import {h, icon, replace} from '../dom.js';
import {count, exact, JOB_TYPE, JOB_TYPE_HINT, notDueYet, shortId, STATUSES, titleCase} from '../format.js';
import {onStreamOpen, onWorkspaceEvent, statusAfter} from '../live.js';
import {confirmDialog, debounce, elapsed, emptyState, errorBox, progressBar, statusBadge, throttle, timeAgo, toast} from '../ui.js';
import {pager as makePager, readPaging, writePaging} from '../pager.js';
import {openNewJobDialog} from './newjob.js';

const ID_PART = /^[0-9a-f-]{1,36}$/;
const ERROR_LINE_CHARS = 140;
// Filters of the "more filters" row, by their API names.
const MORE_FILTERS = ['worker_id', 'concurrency_key', 'error_contains', 'created_after', 'created_before'];
const TEXT_FILTERS = ['type', 'agent_task_id', 'q', ...MORE_FILTERS];
// A bulk action goes on, a bounded batch a request, while the server says more remain.
const BULK_REQUESTS_AT_MOST = 1000;
// A server from before `type_prefix` ignores it: seen once, the type box asks for the exact
// type instead, as such a server understands.
let typePrefixIgnored = false;

/** What a person pastes into the id box, as the server's `q` wants it: the list shows ids
 * as "…" and their last digits, and people copy the ellipsis (or "...") along with them. */
function idPart(text) {
  return text.trim().replace(/^(?:…|\.{2,})\s*/, '').trim().toLowerCase();
}

/** The first line of an error, shortened for a table cell. */
function errorLine(error) {
  const line = String(error).split('\n').find((part) => part.trim()) || '';
  return line.length > ERROR_LINE_CHARS ? `${line.slice(0, ERROR_LINE_CHARS - 1)}…` : line;
}

function readFilters(query) {
  const filters = {
    status: query.getAll('status').filter((status) => STATUSES.includes(status)),
    ...readPaging(query),
  };
  for (const key of TEXT_FILTERS) filters[key] = query.get(key) || '';
  return filters;
}

/** A datetime-local input's value (the browser's time zone) as an ISO moment, or ''. */
function isoMoment(local) {
  if (!local) return '';
  const moment = new Date(local);
  return Number.isNaN(moment.getTime()) ? '' : moment.toISOString();
}

/** An ISO moment as a datetime-local input shows it (in the browser's time zone). */
function localMoment(iso) {
  const moment = iso ? new Date(iso) : null;
  if (!moment || Number.isNaN(moment.getTime())) return '';
  const shifted = new Date(moment.getTime() - moment.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}

/** What the filters ask of the server, by the API's names (a list's query, a bulk body). */
function filterQuery(filters, byPrefix) {
  const query = {status: [...filters.status]};
  for (const key of TEXT_FILTERS) if (filters[key]) query[key === 'type' && byPrefix ? 'type_prefix' : key] = filters[key];
  return query;
}

/** A bulk request's filters in words, as its confirmation states them. */
function filterWords(body) {
  if (body.all) return 'none (every job of the workspace)';
  const words = [];
  if (body.status) words.push(`status ${body.status.map(titleCase).join(' or ')}`);
  const say = {
    type: (value) => `type ${value}`,
    type_prefix: (value) => `type starting with ${value}`,
    agent_task_id: (value) => `agent task ${value}`,
    q: (value) => `id containing ${value}`,
    worker_id: (value) => `worker ${value}`,
    concurrency_key: (value) => `concurrency key ${value}`,
    error_contains: (value) => `error containing "${value}"`,
    created_after: (value) => `created after ${exact(value)}`,
    created_before: (value) => `created before ${exact(value)}`,
  };
  for (const [key, describe] of Object.entries(say)) if (body[key]) words.push(describe(body[key]));
  return words.join('; ');
}

function writeFilters(filters) {
  const params = new URLSearchParams();
  for (const status of filters.status) params.append('status', status);
  for (const key of TEXT_FILTERS) if (filters[key]) params.set(key, filters[key]);
  writePaging(params, filters);
  const text = params.toString();
  history.replaceState(null, '', `#/jobs${text ? `?${text}` : ''}`);
}

export function mountJobs(main, {query}) {
  document.title = 'Jobs · Conveyor';
  const filters = readFilters(query);
  let stopped = false;
  let controller = null;
  let shown = new Map(); // job id → version, as last rendered
  let firstLoad = true;
  let knownTypes = [];

  // -- filters ---------------------------------------------------------------------------
  const statusButtons = STATUSES.map((status) => {
    const button = h('button', {
      type: 'button', class: ['chip', `chip-${status.toLowerCase()}`], 'aria-pressed': String(filters.status.includes(status)),
      'data-testid': `filter-${status}`,
    }, h('span', {class: 'badge-dot', 'aria-hidden': 'true'}), titleCase(status));
    button.addEventListener('click', () => {
      const on = !filters.status.includes(status);
      filters.status = on ? [...filters.status, status] : filters.status.filter((item) => item !== status);
      button.setAttribute('aria-pressed', String(on));
      changed();
    });
    return button;
  });
  const typeInput = h('input', {
    id: 'filter-type', class: 'input mono', type: 'search', list: 'filter-type-options', value: filters.type, autocomplete: 'off',
    autocapitalize: 'off', spellcheck: 'false', placeholder: 'any type, or its start', 'aria-describedby': 'filter-type-error',
  });
  const typeError = h('span', {id: 'filter-type-error', class: 'field-error', hidden: true}, `A type ${JOB_TYPE_HINT}`);
  const typeOptions = h('datalist', {id: 'filter-type-options'});
  const agentInput = h('input', {id: 'filter-agent', class: 'input mono', type: 'search', value: filters.agent_task_id, autocomplete: 'off', placeholder: 'any agent task'});
  const idInput = h('input', {
    id: 'filter-id', class: 'input mono', type: 'search', value: filters.q, autocomplete: 'off', autocapitalize: 'off',
    spellcheck: 'false', placeholder: 'any part, e.g. the digits shown', 'aria-describedby': 'filter-id-error',
  });
  const idError = h('span', {id: 'filter-id-error', class: 'field-error', hidden: true}, 'An id is hexadecimal digits and dashes.');
  const moreInputs = {
    worker_id: h('input', {id: 'filter-worker', class: 'input mono', type: 'search', value: filters.worker_id, autocomplete: 'off', placeholder: 'any worker'}),
    concurrency_key: h('input', {id: 'filter-concurrency', class: 'input mono', type: 'search', value: filters.concurrency_key, autocomplete: 'off', placeholder: 'any key'}),
    error_contains: h('input', {id: 'filter-error', class: 'input', type: 'search', value: filters.error_contains, autocomplete: 'off', placeholder: 'any error'}),
    created_after: h('input', {id: 'filter-after', class: 'input', type: 'datetime-local', value: localMoment(filters.created_after)}),
    created_before: h('input', {id: 'filter-before', class: 'input', type: 'datetime-local', value: localMoment(filters.created_before)}),
  };
  const clear = h('button', {class: 'button button-ghost', type: 'button'}, 'Clear filters');
  const textChanged = debounce(() => {
    // Types are lower case: "Demo" means demo.
    const type = typeInput.value.trim().toLowerCase();
    const typeValid = !type || JOB_TYPE.test(type);
    typeError.hidden = typeValid;
    typeInput.setAttribute('aria-invalid', String(!typeValid));
    const q = idPart(idInput.value);
    const idValid = !q || ID_PART.test(q);
    idError.hidden = idValid;
    idInput.setAttribute('aria-invalid', String(!idValid));
    if (!typeValid || !idValid) return;
    filters.type = type;
    filters.agent_task_id = agentInput.value.trim();
    filters.q = q;
    for (const key of ['worker_id', 'concurrency_key', 'error_contains']) filters[key] = moreInputs[key].value.trim();
    for (const key of ['created_after', 'created_before']) filters[key] = isoMoment(moreInputs[key].value);
    changed();
  }, 250);
  for (const input of [typeInput, agentInput, idInput, ...Object.values(moreInputs)]) {
    input.addEventListener('input', () => {
      // Typing changes the filters now, though the list follows a moment later.
      setSelected(false);
      textChanged();
    });
  }
  clear.addEventListener('click', () => {
    Object.assign(filters, {status: [], page: 1});
    for (const key of TEXT_FILTERS) filters[key] = '';
    for (const button of statusButtons) button.setAttribute('aria-pressed', 'false');
    typeInput.value = agentInput.value = idInput.value = '';
    for (const input of Object.values(moreInputs)) input.value = '';
    idError.hidden = typeError.hidden = true;
    idInput.removeAttribute('aria-invalid');
    typeInput.removeAttribute('aria-invalid');
    changed();
  });

  const filterBar = h('form', {class: 'filters card', role: 'search', 'aria-label': 'Filter jobs', onsubmit: (event) => event.preventDefault()},
    h('fieldset', {class: 'filter-status'}, h('legend', {class: 'label'}, 'Status'), h('div', {class: 'chips'}, statusButtons)),
    h('div', {class: 'filter-fields'},
      h('div', {class: 'field'}, h('label', {class: 'label', for: 'filter-type'}, 'Type'), typeInput, typeOptions, typeError),
      h('div', {class: 'field'}, h('label', {class: 'label', for: 'filter-agent'}, 'Agent task'), agentInput),
      h('div', {class: 'field'}, h('label', {class: 'label', for: 'filter-id'}, 'Job id'), idInput, idError),
      h('div', {class: 'field field-end'}, clear)),
    h('details', {class: 'filter-more', open: MORE_FILTERS.some((key) => filters[key]) || null},
      h('summary', {class: 'label'}, 'More filters'),
      h('div', {class: 'filter-fields'},
        h('div', {class: 'field'}, h('label', {class: 'label', for: 'filter-worker'}, 'Worker'), moreInputs.worker_id),
        h('div', {class: 'field'}, h('label', {class: 'label', for: 'filter-concurrency'}, 'Concurrency key'), moreInputs.concurrency_key),
        h('div', {class: 'field'}, h('label', {class: 'label', for: 'filter-error'}, 'Error contains'), moreInputs.error_contains),
        h('div', {class: 'field'}, h('label', {class: 'label', for: 'filter-after'}, 'Created after'), moreInputs.created_after),
        h('div', {class: 'field'}, h('label', {class: 'label', for: 'filter-before'}, 'Created before'), moreInputs.created_before))));

  // -- "select all matching": cancel or retry every job the filters match ----------------
  let lastMeta = null;
  // What "Select all matching" selected: the filters as the bulk request sends them, taken
  // when it was clicked (null: nothing selected). A bulk action states and sends exactly
  // these, and is refused once they are no longer what is selected.
  let selected = null;
  const bulkResult = h('span', {class: 'bulk-result', 'data-testid': 'bulk-result', 'aria-live': 'polite'});
  const selectAll = h('button', {class: 'button button-small', type: 'button', 'data-testid': 'select-all'}, 'Select all matching');
  const selectedText = h('span', {class: 'bulk-selected', 'data-testid': 'bulk-selected'});
  const bulkCancel = can('cancel') ? h('button', {class: 'button button-small button-danger', type: 'button', 'data-testid': 'bulk-cancel'}, 'Cancel…') : null;
  const bulkRetry = can('retry') ? h('button', {class: 'button button-small', type: 'button', 'data-testid': 'bulk-retry'}, 'Retry…') : null;
  const unselect = h('button', {class: 'button button-small button-ghost', type: 'button'}, 'Clear selection');
  const selection = h('div', {class: 'bulk-selection', hidden: true}, selectedText, bulkCancel, bulkRetry, unselect);
  const bulkBar = bulkCancel || bulkRetry
    ? h('div', {class: 'bulk-bar', 'data-testid': 'bulk-bar'}, selectAll, selection, bulkResult)
    : null;
  const setSelected = (on) => {
    selected = on ? {body: bulkBody()} : null;
    selection.hidden = !on;
    selectAll.hidden = on;
    if (on && lastMeta) {
      const about = lastMeta.total_is_estimate ? 'about ' : '';
      selectedText.textContent = `All ${about}${count(lastMeta.total)} jobs matching these filters are selected.`;
    }
  };
  selectAll.addEventListener('click', () => { bulkResult.textContent = ''; setSelected(true); });
  unselect.addEventListener('click', () => setSelected(false));
  const BULK = {
    cancel: {path: '/jobs/bulk/cancel', title: 'Cancel', which: 'pending, queued or running', done: 'cancelled',
      none: 'None of the matching jobs can be cancelled: only pending, queued or running jobs can.'},
    retry: {path: '/jobs/bulk/retry', title: 'Run again', which: 'failed or cancelled (and not run again yet)', done: 'run again',
      none: 'None of the matching jobs can be run again: only failed or cancelled jobs not run again yet can.'},
  };
  function bulkBody() {
    const body = filterQuery(filters, !typePrefixIgnored);
    if (!Object.keys(body).some((key) => key !== 'status') && !body.status.length) body.all = true;
    if (!body.status.length) delete body.status;
    return body;
  }
  async function runBulk(action) {
    const what = BULK[action];
    const chosen = selected;
    if (!chosen) return; // the filters changed since the selection: nothing is selected
    const {body} = chosen;
    const stillChosen = () => {
      if (!stopped && selected === chosen) return true;
      toast(`Nothing was ${what.done}: the filters changed before you confirmed. Select the matching jobs again.`, {kind: 'warning'});
      return false;
    };
    try {
      const counted = await post(ws(what.path), {...body, dry_run: true});
      if (!stillChosen()) return;
      if (!counted.remaining) {
        toast(what.none, {kind: 'warning'});
        return;
      }
      const about = counted.remaining_is_estimate ? 'about ' : '';
      const many = `${about}${count(counted.remaining)} ${counted.remaining === 1 ? 'job' : 'jobs'}`;
      const yes = await confirmDialog({
        title: `${what.title} ${many}?`,
        body: `${many} matching these filters (${what.which}) will be ${what.done}. Filters: ${filterWords(body)}. A job that changes meanwhile is left as it is.`,
        confirm: `${what.title} ${many}`,
        cancel: 'Back',
        danger: action === 'cancel',
      });
      if (!yes || !stillChosen()) return;
      let matched = 0;
      let changed = 0;
      let cursor = null;
      for (let request = 0; request < BULK_REQUESTS_AT_MOST; request += 1) {
        const answer = await post(ws(what.path), cursor ? {...body, cursor} : body);
        matched += answer.matched;
        changed += answer.changed;
        if (!answer.limit_reached) break;
        cursor = answer.next_cursor;
      }
      setSelected(false);
      bulkResult.textContent = `Matched ${count(matched)} · ${what.done} ${count(changed)}`;
      toast(`${titleCase(what.done)}: ${count(changed)} of ${count(matched)} matching jobs`, {kind: 'success'});
      load();
    } catch (error) {
      toast(error.detail || String(error), {kind: 'error'});
    }
  }
  if (bulkCancel) bulkCancel.addEventListener('click', () => runBulk('cancel'));
  if (bulkRetry) bulkRetry.addEventListener('click', () => runBulk('retry'));

  // -- table and pager -------------------------------------------------------------------
  const summary = h('span', {'data-testid': 'jobs-summary'}, 'Loading…');
  const tbody = h('tbody');
  const thead = h('thead');
  const table = h('table', {class: 'table table-jobs table-stack', 'data-testid': 'jobs-table'},
    h('caption', {class: 'sr-only'}, 'Jobs, newest first. Press Enter on a row to open the job.'),
    thead, tbody);
  let columns = [];
  let errorsShown = null;
  const results = h('div', {class: 'table-wrap card card-flush'}, table);
  const pager = makePager({
    limit: filters.limit,
    onPage: (number) => { filters.page = number; changed(false); },
    onSize: (limit) => { filters.limit = limit; changed(); },
  });

  const newJob = can('create')
    ? h('button', {class: 'button button-primary', type: 'button', 'data-testid': 'new-job'}, icon('plus'), h('span', {}, 'New job'))
    : null;
  if (newJob) {
    newJob.addEventListener('click', async () => {
      const job = await openNewJobDialog({types: knownTypes});
      newJob.focus();
      if (!job) return;
      toast(`Created job ${shortId(job.id)} (${job.type})`, {
        kind: 'success', action: h('a', {href: `#/jobs/${job.id}`, class: 'toast-link'}, 'Open'),
      });
      load();
    });
  }

  showColumns();
  main.append(h('div', {class: 'page'},
    h('div', {class: 'page-head'},
      h('div', {}, h('h1', {class: 'page-title', tabindex: '-1'}, 'Jobs'), h('p', {class: 'page-subtitle'}, summary)),
      h('div', {class: 'page-actions'}, newJob)),
    filterBar, bulkBar, results, pager.element));

  function changed(resetPage = true) {
    if (resetPage) filters.page = 1;
    setSelected(false);
    writeFilters(filters);
    load();
  }

  function open(id) {
    location.hash = `#/jobs/${id}`;
  }

  /** The columns: each a header and a cell for a job. The cell's `label` names it on a
   * phone, where each row is a stack of labelled cells (see app.css). */
  function columnsFor(withErrors) {
    return [
      {label: 'Job', cell: (job) => h('td', {class: 'cell-id'}, h('a', {href: `#/jobs/${job.id}`, class: 'mono job-link', tabindex: '-1', title: job.id}, `…${shortId(job.id)}`))},
      {label: 'Type', cell: (job) => h('td', {class: 'cell-type'}, h('span', {class: 'mono type-name'}, job.type),
        job.agent_task_id ? h('span', {class: 'sub mono', title: 'agent task'}, job.agent_task_id) : null)},
      {label: 'Status', cell: (job) => h('td', {class: 'cell-status', 'data-cell': 'status'}, statusBadge(job.status),
        notDueYet(job) ? h('span', {class: 'sub', 'data-testid': 'due', 'data-until': job.run_at}, timeAgo(job.run_at, {prefix: 'due '})) : null)},
      withErrors ? {label: 'Error', cell: (job) => h('td', {class: 'cell-error'}, job.error
        ? h('span', {class: 'row-error', title: job.error, 'data-testid': 'row-error'}, errorLine(job.error))
        : h('span', {class: 'muted'}, '—'))} : null,
      {label: 'Priority', num: true, cell: (job) => h('td', {class: 'num'}, h('span', {class: ['priority', `priority-${job.priority <= 2 ? 'high' : job.priority >= 8 ? 'low' : 'normal'}`]}, String(job.priority)))},
      // Failed jobs are triaged by their error, which takes the progress bar's room.
      withErrors ? null : {label: 'Progress', cell: (job) => {
        const bar = progressBar({size: 'small', label: `Progress of job ${shortId(job.id)}`});
        bar.update(job.progress_percent, job.status);
        return h('td', {}, h('div', {class: 'cell-progress'}, bar, h('span', {class: 'progress-text', 'data-testid': 'progress-text'}, `${job.progress_percent}%`)));
      }},
      {label: 'Attempt', num: true, cell: (job) => h('td', {class: 'num'}, `${job.attempt}/${job.max_attempts}`)},
      {label: 'Worker', cell: (job) => h('td', {class: 'mono'}, job.worker_id || h('span', {class: 'muted'}, '—'))},
      {label: 'Created', cell: (job) => h('td', {}, timeAgo(job.created_at))},
      {label: 'Run time', cell: (job) => h('td', {}, job.started_at ? elapsed(job.started_at, job.completed_at) : h('span', {class: 'muted', title: job.run_at ? `runs at ${exact(job.run_at)}` : ''}, '—'))},
    ].filter(Boolean);
  }

  function showColumns() {
    const withErrors = filters.status.includes('FAILED');
    if (withErrors === errorsShown) return;
    errorsShown = withErrors;
    columns = columnsFor(withErrors);
    table.classList.toggle('with-errors', withErrors);
    replace(thead, h('tr', {}, columns.map((column) => h('th', {scope: 'col', class: column.num ? 'num' : null}, column.label))));
  }

  function row(job, flash) {
    const tr = h('tr', {
      tabindex: '0', class: ['job-row', flash ? `flash-${flash}` : null], 'data-testid': 'job-row', 'data-job-id': job.id,
      'data-status': job.status,
      'aria-label': `Job ${shortId(job.id)}, ${job.type}, ${titleCase(job.status)}${notDueYet(job) ? `, due at ${exact(job.run_at)}` : ''}`,
    }, columns.map((column) => {
      const cell = column.cell(job);
      cell.dataset.label = column.label;
      return cell;
    }));
    tr.addEventListener('click', (event) => {
      if (event.target.closest('a')) return;
      open(job.id);
    });
    tr.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        open(job.id);
      } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const sibling = event.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling;
        if (sibling) sibling.focus();
      }
    });
    tr.job = job;
    return tr;
  }

  function render(page) {
    showColumns();
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('tr[data-job-id]');
    const focusedId = focused ? focused.dataset.jobId : null;
    const before = shown;
    shown = new Map(page.data.map((job) => [job.id, job.version]));
    const rows = page.data.map((job) => {
      let flash = null;
      if (!firstLoad && !before.has(job.id)) flash = 'new';
      else if (!firstLoad && before.get(job.id) !== job.version) flash = 'changed';
      return row(job, flash);
    });
    firstLoad = false;
    if (!rows.length) {
      const filtered = filters.status.length || TEXT_FILTERS.some((key) => filters[key]);
      replace(tbody, h('tr', {class: 'row-message'}, h('td', {colspan: String(columns.length)}, filtered
        ? emptyState('No jobs match these filters', 'Change or clear the filters to see more.')
        : emptyState('No jobs yet', can('create') ? 'Create one with "New job", or with `conveyor jobs create`.' : 'Jobs created in this workspace appear here as they arrive.'))));
    } else {
      replace(tbody, rows);
    }
    if (focusedId) {
      const again = tbody.querySelector(`tr[data-job-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus({preventScroll: true});
    }
    const {total} = page.meta;
    lastMeta = page.meta;
    const about = page.meta.total_is_estimate ? 'about ' : '';
    summary.textContent = total === 1 ? '1 job' : `${about}${count(total)} jobs`;
    pager.show(page.meta);
    selectAll.disabled = !total;
  }

  async function load() {
    if (controller) controller.abort();
    const mine = new AbortController();
    controller = mine;
    table.setAttribute('aria-busy', 'true');
    const byPrefix = !typePrefixIgnored;
    try {
      const page = await get(ws('/jobs'), {
        signal: mine.signal,
        query: {...filterQuery(filters, byPrefix), page: filters.page, limit: filters.limit},
      });
      if (stopped || controller !== mine) return;
      if (byPrefix && filters.type && page.data.some((job) => !job.type.startsWith(filters.type))) {
        typePrefixIgnored = true;
        load();
        return;
      }
      if (page.meta.total_pages && filters.page > page.meta.total_pages) {
        // the page emptied (jobs moved out of the filter): go to the last one that has rows
        filters.page = page.meta.total_pages;
        writeFilters(filters);
        load();
        return;
      }
      render(page);
    } catch (error) {
      if (stopped || error.name === 'AbortError') return;
      replace(tbody, h('tr', {class: 'row-message'}, h('td', {colspan: String(columns.length)}, errorBox(error, {retry: load}))));
    } finally {
      if (controller === mine) table.setAttribute('aria-busy', 'false');
    }
  }

  // -- live ------------------------------------------------------------------------------
  const reload = throttle(load, 1000);
  const stopOpen = onStreamOpen(reload); // back from a hidden tab, or a break: look again
  const unsubscribe = onWorkspaceEvent((type, event) => {
    const tr = tbody.querySelector(`tr[data-job-id="${CSS.escape(String(event.job_id))}"]`);
    if (tr) {
      const status = statusAfter(type, event.payload);
      if (status && status !== tr.dataset.status) {
        tr.dataset.status = status;
        tr.querySelector('[data-cell="status"]').replaceChildren(statusBadge(status));
      }
      if (type === 'job.progress' && event.payload) {
        const percent = event.payload.progress_percent;
        const bar = tr.querySelector('[role=progressbar]'); // none while errors take its column
        if (bar) {
          bar.update(percent, tr.dataset.status);
          tr.querySelector('.progress-text').textContent = `${percent}%`;
        }
        return; // progress changes nothing else the list shows
      }
    }
    if (type.startsWith('job.')) reload();
  });

  get(ws('/stats')).then((stats) => {
    knownTypes = [...new Set((stats.counts || []).map((row) => row.type))].sort();
    replace(typeOptions, knownTypes.map((type) => h('option', {value: type})));
  }).catch(() => {});
  load();

  return () => {
    stopped = true;
    selected = null;
    reload.cancel();
    textChanged.cancel();
    unsubscribe();
    stopOpen();
    if (controller) controller.abort();
  };
}
