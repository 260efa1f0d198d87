// One job: status, progress, payload and result, steps as a timeline, and the event log
// streaming live (the tab's workspace stream, this job's events: see live.js; filtered by
// type, progress ticks hidden on request); Release, Cancel and
// Retry when the role and the job's state allow them; which limits hold a queued job back,
// and when a job created for later is due.

import {can, get, patch, post, session, ws} from '../api.js';
import {h, icon, replace, setVar} from '../dom.js';
import {between, clock, count, duration, exact, notDueYet, shortId, TERMINAL, titleCase} from '../format.js';
import {compact, jsonView} from '../json.js';
import {onStreamOpen, onStreamState, onWorkspaceEvent} from '../live.js';
import {
  confirmDialog, copyButton, elapsed, errorBox, liveIndicator, progressBar, statusBadge, throttle, timeAgo, toast,
} from '../ui.js';
import {whyText} from './limits.js';

const STEP_STATUS_ICON = {COMPLETED: '✓', FAILED: '✕', SKIPPED: '–', RUNNING: '', PENDING: ''};
// The events a busy job sends by the hundred; the log can hide them (remembered per browser).
const PROGRESS_TYPES = new Set(['job.progress', 'step.progress']);
const HIDE_PROGRESS_KEY = 'conveyor.events.hideProgress';
// A queued job learns of no event when a limit makes room or is paused: look again.
const WAITING_REFRESH_MS = 5000;
// The longest wait setTimeout takes (a longer one fires at once).
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/** A job created with `hold: true`: PENDING, and waiting for nothing but a release (not
 * for dependencies, nor for an approval). */
function isHeld(job) {
  return job.status === 'PENDING' && !(Number(job.waiting_on) > 0) && job.gate !== true;
}

function storedHideProgress() {
  try {
    return localStorage.getItem(HIDE_PROGRESS_KEY) === '1';
  } catch {
    return false; // storage blocked: the toggle still works for this page
  }
}

export function mountJob(main, {params}) {
  const jobId = params[0].toLowerCase();
  document.title = `Job ${shortId(jobId)} · Conveyor`;
  const page = h('div', {class: 'page'}, h('p', {class: 'muted'}, 'Loading…'));
  main.append(page);

  let stopped = false;
  let job = null;
  let steps = [];
  let lastSeq = 0;
  let arrivedWhileLoading = []; // [type, event]: applied once the page has the job (then null)
  let lookAgainWhenLoaded = false;
  let progressMessage = '';
  let follow = true;
  let hideProgress = storedHideProgress();
  let onlyType = '';
  let shownEvents = 0;
  const seen = new Set();
  const typeCounts = new Map(); // event type → how many, for the type filter's options

  // -- the parts of the page, built once and updated in place -----------------------------
  const title = h('h1', {class: 'page-title job-title mono', tabindex: '-1', 'data-testid': 'job-type'});
  const badgeSlot = h('span', {'data-testid': 'job-status'});
  const live = liveIndicator();
  const actions = h('div', {class: 'page-actions'});
  const heldNote = h('p', {class: 'alert alert-info held-note', 'data-testid': 'held-note', hidden: true});
  const waitingNote = h('div', {class: 'alert alert-warning held-note', 'data-testid': 'waiting-note', hidden: true});
  let waitingTimer = null;
  const dueNote = h('p', {class: 'alert alert-info held-note', 'data-testid': 'due-note', hidden: true});
  let dueTimer = null;
  const idLine = h('p', {class: 'page-subtitle job-id'});
  const bar = progressBar({label: 'Job progress', testid: 'job-progress'});
  const percent = h('span', {class: 'progress-percent', 'data-testid': 'job-progress-text'});
  const message = h('span', {class: 'progress-message', 'data-testid': 'job-progress-message'});
  const facts = h('dl', {class: 'facts', 'data-testid': 'job-facts'});
  const payloadBox = h('div');
  const outcomeCard = h('section', {class: 'card', 'aria-labelledby': 'outcome-title'});
  const stepsBody = h('div', {'data-testid': 'steps'});
  const stepsSummary = h('span', {class: 'card-note'});
  const eventCount = h('span', {class: 'card-note', 'data-testid': 'event-count'});
  const log = h('ol', {class: 'event-log', role: 'log', 'aria-live': 'off', 'aria-label': 'Event log', tabindex: '0', 'data-testid': 'event-log'});
  const noneShown = h('p', {class: 'muted empty-inline events-none-shown', hidden: true, 'data-testid': 'events-none-shown'},
    'No event matches the filter.');
  const followBox = h('input', {type: 'checkbox', id: 'follow-events', checked: true});
  followBox.addEventListener('change', () => {
    follow = followBox.checked;
    if (follow) log.scrollTop = log.scrollHeight;
  });
  const progressBox = h('input', {type: 'checkbox', id: 'show-progress-events', checked: !hideProgress, 'data-testid': 'show-progress'});
  progressBox.addEventListener('change', () => {
    hideProgress = !progressBox.checked;
    try {
      localStorage.setItem(HIDE_PROGRESS_KEY, hideProgress ? '1' : '0');
    } catch {
      // not remembered, still applied
    }
    filterEvents();
  });
  const typeFilter = h('select', {id: 'event-type-filter', class: 'input input-small mono', 'data-testid': 'event-type-filter'},
    h('option', {value: ''}, 'all types'));
  typeFilter.addEventListener('change', () => {
    onlyType = typeFilter.value;
    filterEvents();
  });

  function layout() {
    replace(page,
      h('nav', {class: 'breadcrumb', 'aria-label': 'Breadcrumb'},
        h('a', {href: '#/jobs'}, 'Jobs'), h('span', {'aria-hidden': 'true'}, ' / '), h('span', {class: 'mono', 'aria-current': 'page'}, shortId(jobId))),
      h('div', {class: 'page-head'},
        h('div', {class: 'job-heading'}, h('div', {class: 'title-row'}, title, badgeSlot, live), idLine),
        actions),
      heldNote,
      dueNote,
      waitingNote,
      h('section', {class: 'card progress-card', 'aria-label': 'Progress'},
        h('div', {class: 'progress-row'}, bar, percent), message),
      h('div', {class: 'job-grid'},
        h('div', {class: 'job-main'},
          h('section', {class: 'card', 'aria-labelledby': 'steps-title'},
            h('div', {class: 'card-head'}, h('h2', {id: 'steps-title', class: 'card-title'}, 'Steps'), stepsSummary),
            stepsBody),
          h('section', {class: 'card', 'aria-labelledby': 'events-title'},
            h('div', {class: 'card-head'},
              h('h2', {id: 'events-title', class: 'card-title'}, 'Events'), eventCount,
              h('div', {class: 'event-filters', role: 'group', 'aria-label': 'Which events to show'},
                h('label', {class: 'inline-field', for: 'event-type-filter'}, h('span', {class: 'muted'}, 'Type'), typeFilter),
                h('label', {class: 'check', for: 'show-progress-events'}, progressBox, 'Progress ticks'),
                h('label', {class: 'check', for: 'follow-events'}, followBox, 'Follow new events'))),
            log, noneShown)),
        h('div', {class: 'job-side'},
          outcomeCard,
          h('section', {class: 'card', 'aria-labelledby': 'facts-title'}, h('h2', {id: 'facts-title', class: 'card-title'}, 'Details'), facts),
          h('section', {class: 'card', 'aria-labelledby': 'payload-title'},
            h('div', {class: 'card-head'}, h('h2', {id: 'payload-title', class: 'card-title'}, 'Payload')), payloadBox))));
  }

  // -- job ---------------------------------------------------------------------------------
  function renderJob(next) {
    const firstTime = !job;
    job = next;
    title.textContent = job.type;
    replace(badgeSlot, statusBadge(job.status));
    document.title = `${job.type} ${shortId(job.id)} · ${titleCase(job.status)} · Conveyor`;
    replace(idLine, h('span', {class: 'mono', 'data-testid': 'job-id'}, job.id), ' ', copyButton(job.id, 'Copy id'),
      job.retry_of ? h('span', {class: 'retry-of'}, ' · retry of ', h('a', {href: `#/jobs/${job.retry_of}`, class: 'mono'}, shortId(job.retry_of))) : null);
    bar.update(job.progress_percent, job.status);
    percent.textContent = `${job.progress_percent}%`;
    message.textContent = progressMessage;
    message.hidden = !progressMessage;
    renderActions();
    heldNote.hidden = !isHeld(job);
    replace(heldNote, h('strong', {}, 'Held. '), can('release')
      ? 'No worker claims this job until it is released: Release queues it.'
      : 'No worker claims this job until a client or admin key releases it.');
    renderDue();
    renderWaiting();
    renderFacts();
    if (firstTime) replace(payloadBox, jsonView(job.payload, {label: 'Payload', testid: 'payload'}));
    renderOutcome();
    // After its last event a job has nothing more to follow.
    if (TERMINAL.has(job.status)) live.set('complete');
  }

  /** When a queued job created for later (or retried after a backoff) becomes due; the note
   * goes when that time comes. */
  function renderDue() {
    clearTimeout(dueTimer);
    dueNote.hidden = !notDueYet(job);
    if (dueNote.hidden) return;
    replace(dueNote, h('strong', {}, 'Not due until '), h('span', {title: exact(job.run_at)}, clock(job.run_at)),
      ' (', timeAgo(job.run_at), '). No worker claims it before then.');
    const wait = new Date(job.run_at).getTime() - Date.now();
    if (!stopped) dueTimer = setTimeout(renderDue, Math.min(wait, LONGEST_TIMER_MS));
  }

  /** The limits holding a queued job back, and why (a job answer without `waiting_for`,
   * such as a cancel's, keeps what the last full read said until the next one). */
  function renderWaiting() {
    clearTimeout(waitingTimer);
    if (job.status !== 'QUEUED') {
      waitingNote.hidden = true;
      return;
    }
    if (!stopped) waitingTimer = setTimeout(refreshJob, WAITING_REFRESH_MS);
    if (!Array.isArray(job.waiting_for)) return;
    const waits = job.waiting_for;
    waitingNote.hidden = !waits.length;
    replace(waitingNote,
      h('strong', {}, waits.length === 1 ? 'Held back by a limit.' : 'Held back by limits.'),
      h('ul', {class: 'waiting-list'}, waits.map((limit) => h('li', {'data-testid': 'waiting-for', 'data-limit': limit.name},
        `Waiting for limit ${limit.name}: ${whyText(limit, limit.reason)}`))),
      h('a', {href: '#/limits'}, 'See the limits'));
  }

  function renderActions() {
    const buttons = [];
    if (can('release') && isHeld(job)) {
      const release = h('button', {class: 'button button-primary', type: 'button', 'data-testid': 'release'}, icon('play'), h('span', {}, 'Release'));
      release.addEventListener('click', () => releaseJob(release));
      buttons.push(release);
    }
    if (can('retry') && (job.status === 'FAILED' || job.status === 'CANCELLED')) {
      const retry = h('button', {class: 'button', type: 'button', 'data-testid': 'retry'}, icon('retry'), h('span', {}, 'Retry'));
      retry.addEventListener('click', () => retryJob(retry));
      buttons.push(retry);
    }
    if (can('cancel') && !TERMINAL.has(job.status)) {
      const cancel = h('button', {class: 'button button-danger', type: 'button', 'data-testid': 'cancel'}, icon('stop'), h('span', {}, 'Cancel job'));
      cancel.addEventListener('click', () => cancelJob(cancel));
      buttons.push(cancel);
    }
    const hadFocus = actions.contains(document.activeElement);
    replace(actions, buttons);
    if (hadFocus) (actions.querySelector('button') || title).focus();
  }

  async function cancelJob(button) {
    const running = job.status === 'RUNNING';
    const sure = await confirmDialog({
      title: 'Cancel this job?',
      body: running
        ? `The job is running on ${job.worker_id || 'a worker'}. It is marked CANCELLED at once; the worker learns at its next report or heartbeat and stops.`
        : 'The job will not run. This cannot be undone, but a cancelled job can be retried as a new job.',
      confirm: 'Cancel job', cancel: 'Keep it', danger: true,
    });
    if (!sure) {
      button.focus();
      return;
    }
    button.disabled = true;
    try {
      renderJob(await post(ws(`/jobs/${job.id}/cancel`)));
      jobSoon(); // the events the cancel wrote, should the stream be slower
      toast(`Job ${shortId(job.id)} cancelled`, {kind: 'success'});
    } catch (error) {
      toast(`Could not cancel: ${error.detail || error.message}`, {kind: 'error'});
      button.disabled = false;
      refreshJob();
    }
  }

  async function releaseJob(button) {
    button.disabled = true;
    try {
      renderJob(await patch(ws(`/jobs/${job.id}/status`), {status: 'QUEUED'}));
      jobSoon(); // the job.queued event, should the stream be slower
      toast(`Job ${shortId(job.id)} released: queued for a worker`, {kind: 'success'});
    } catch (error) {
      toast(`Could not release: ${error.detail || error.message}`, {kind: 'error'});
      button.disabled = false;
      refreshJob();
    }
  }

  async function retryJob(button) {
    button.disabled = true;
    try {
      const created = await post(ws(`/jobs/${job.id}/retry`));
      toast(`Retried as new job ${shortId(created.id)}`, {kind: 'success'});
      location.hash = `#/jobs/${created.id}`;
    } catch (error) {
      toast(`Could not retry: ${error.detail || error.message}`, {kind: 'error'});
      button.disabled = false;
    }
  }

  function fact(label, ...value) {
    return [h('dt', {}, label), h('dd', {}, ...value)];
  }

  function when(value) {
    if (!value) return [h('span', {class: 'muted'}, '—')];
    return [h('span', {title: exact(value)}, clock(value)), ' ', h('span', {class: 'muted'}, '(', timeAgo(value), ')')];
  }

  function timesOutAt(running) {
    return new Date(new Date(running.started_at).getTime() + running.timeout_seconds * 1000).toISOString();
  }

  function renderFacts() {
    const waited = job.started_at ? between(job.run_at > job.created_at ? job.run_at : job.created_at, job.started_at) : null;
    replace(facts,
      fact('Status', statusBadge(job.status, {testid: 'fact-status'})),
      fact('Priority', h('span', {}, String(job.priority)), h('span', {class: 'muted'}, job.priority <= 2 ? ' · urgent' : job.priority >= 8 ? ' · low' : '')),
      fact('Attempt', h('span', {'data-testid': 'attempts'}, `${job.attempt} of ${job.max_attempts}`)),
      fact('Timeout', job.timeout_seconds == null
        ? h('span', {class: 'muted', 'data-testid': 'timeout'}, 'none')
        : h('span', {'data-testid': 'timeout', title: `${job.timeout_seconds} s`}, `${duration(job.timeout_seconds * 1000)} per attempt`)),
      job.timeout_seconds != null && job.status === 'RUNNING' && job.started_at
        ? fact('Times out', timeAgo(timesOutAt(job), {prefix: ''})) : null,
      fact('Worker', job.worker_id ? h('span', {class: 'mono', 'data-testid': 'worker'}, job.worker_id) : h('span', {class: 'muted'}, '—')),
      job.concurrency_key ? fact('Concurrency key', h('a', {class: 'mono', href: '#/limits', 'data-testid': 'concurrency-key', title: 'The limit of this name, if there is one, governs the job'}, job.concurrency_key)) : null,
      job.agent_task_id ? fact('Agent task', h('a', {class: 'mono', href: `#/jobs?agent_task_id=${encodeURIComponent(job.agent_task_id)}`}, job.agent_task_id)) : null,
      fact('Created', ...when(job.created_at)),
      job.run_at && new Date(job.run_at) - new Date(job.created_at) > 1000 ? fact('Runs at', ...when(job.run_at)) : null,
      fact('Started', ...when(job.started_at)),
      fact('Finished', ...when(job.completed_at)),
      fact('Waited in queue', waited === null ? h('span', {class: 'muted'}, '—') : duration(waited)),
      fact('Run time', job.started_at ? elapsed(job.started_at, job.completed_at) : h('span', {class: 'muted'}, '—')),
      job.lease_expires_at && job.status === 'RUNNING' ? fact('Lease expires', timeAgo(job.lease_expires_at, {prefix: ''})) : null,
      job.idempotency_key ? fact('Idempotency key', h('span', {class: 'mono'}, job.idempotency_key)) : null,
      fact('Version', String(job.version)));
  }

  function renderOutcome() {
    const heading = (text) => h('div', {class: 'card-head'}, h('h2', {id: 'outcome-title', class: 'card-title'}, text));
    if (job.error || job.error_detail) {
      // error_detail: a bounded traceback (or the error's detail), when the worker sent one.
      replace(outcomeCard, heading('Error'),
        job.error ? h('pre', {class: 'error-text', 'data-testid': 'job-error', tabindex: '0'}, job.error) : null,
        job.error_detail ? h('div', {class: 'error-detail'},
          h('h3', {class: 'subhead'}, 'Detail'),
          h('pre', {class: 'output error-detail-text', 'data-testid': 'job-error-detail', tabindex: '0', 'aria-label': 'Error detail'}, job.error_detail)) : null);
    } else if (job.result !== null && job.result !== undefined) {
      replace(outcomeCard, heading('Result'), jsonView(job.result, {label: 'Result', testid: 'result'}));
    } else {
      replace(outcomeCard, heading('Result'), h('p', {class: 'muted'}, 'Completed without a result.'));
    }
    // Nothing to show before the end, nor for a job cancelled without a word.
    outcomeCard.hidden = !job.error && !job.error_detail && (job.result === null || job.result === undefined) && job.status !== 'COMPLETED';
  }

  // -- steps -------------------------------------------------------------------------------
  function renderSteps() {
    if (!steps.length) {
      stepsSummary.textContent = '';
      replace(stepsBody, h('p', {class: 'muted empty-inline'}, TERMINAL.has(job.status) ? 'This job reported no steps.' : 'No steps reported yet.'));
      return;
    }
    const tokensIn = steps.reduce((sum, step) => sum + (step.tokens_input || 0), 0);
    const tokensOut = steps.reduce((sum, step) => sum + (step.tokens_output || 0), 0);
    stepsSummary.textContent = `${steps.length} ${steps.length === 1 ? 'step' : 'steps'}` +
      (tokensIn || tokensOut ? ` · ${count(tokensIn)} tokens in · ${count(tokensOut)} out` : '');
    const start = new Date(job.started_at || job.created_at).getTime();
    const finishes = steps.map((step) => new Date(step.completed_at || Date.now()).getTime());
    const end = Math.max(new Date(job.completed_at || Date.now()).getTime(), ...finishes);
    const span = Math.max(1, end - start);
    replace(stepsBody, h('ol', {class: 'timeline'}, steps.map((step) => {
      const segment = h('span', {class: 'gantt-bar'});
      if (step.started_at) {
        const from = new Date(step.started_at).getTime();
        const to = new Date(step.completed_at || Date.now()).getTime();
        setVar(segment, 'left', `${Math.max(0, Math.min(100, ((from - start) / span) * 100))}%`);
        setVar(segment, 'width', `${Math.max(0.8, Math.min(100, ((to - from) / span) * 100))}%`);
      } else {
        segment.hidden = true;
      }
      const took = step.duration_ms !== null && step.duration_ms !== undefined
        ? h('span', {}, duration(step.duration_ms))
        : step.started_at ? elapsed(step.started_at, step.completed_at) : h('span', {class: 'muted'}, 'not started');
      const tokens = step.tokens_input !== null || step.tokens_output !== null
        ? h('span', {class: 'tokens', 'data-testid': 'step-tokens'}, `${count(step.tokens_input || 0)} in · ${count(step.tokens_output || 0)} out tokens`)
        : null;
      return h('li', {class: ['step', `status-${step.status.toLowerCase()}`], 'data-testid': 'step', 'data-step-status': step.status},
        h('span', {class: 'step-marker', 'aria-hidden': 'true'}, STEP_STATUS_ICON[step.status] || String(step.ordinal)),
        h('div', {class: 'step-body'},
          h('div', {class: 'step-head'},
            h('span', {class: 'step-name'}, `${step.ordinal}. `, step.name),
            h('span', {class: 'tag'}, titleCase(step.phase)),
            h('span', {class: 'tag tag-outline'}, step.type.replace('_', ' ').toLowerCase()),
            statusBadge(step.status, {testid: 'step-status'})),
          h('div', {class: 'step-meta'},
            h('span', {class: 'step-took'}, icon('clock', 'icon-tiny'), ' ', took),
            step.started_at ? h('span', {class: 'muted', title: exact(step.started_at)}, `started ${clock(step.started_at)}`) : null,
            tokens),
          h('div', {class: 'gantt', 'aria-hidden': 'true'}, segment),
          step.output ? h('details', {class: 'step-output'}, h('summary', {}, 'Output'), h('pre', {class: 'output', tabindex: '0'}, step.output)) : null));
    })));
  }

  // -- events ------------------------------------------------------------------------------
  function actorLabel(actor) {
    const text = String(actor || '');
    const worker = /^worker:(.+?)(\/key:.*)?$/.exec(text);
    if (worker) return `worker ${worker[1]}`;
    const key = /^key:([0-9a-f-]+)$/i.exec(text);
    if (key) return key[1] === session().key_id ? 'you' : `key ${shortId(key[1])}`;
    return text;
  }

  function eventDetail(event) {
    const payload = event.payload || {};
    switch (event.type) {
      case 'job.progress':
        return [h('strong', {}, `${payload.progress_percent}%`), payload.message ? ` · ${payload.message}` : ''];
      case 'step.output':
        return h('pre', {class: ['event-output', payload.stream === 'stderr' ? 'stderr' : null]}, payload.text || '');
      case 'job.failed':
        return h('span', {class: 'text-error'}, payload.error || compact(payload));
      case 'job.started':
        return `attempt ${payload.attempt} on ${payload.worker_id || 'a worker'}`;
      case 'job.timed_out':
        return h('span', {class: 'text-error'},
          `attempt ${payload.attempt} ran past its timeout of ${duration((payload.timeout_seconds ?? 0) * 1000)}`);
      case 'step.started': case 'step.completed': case 'step.failed': case 'step.skipped':
        return [h('strong', {}, payload.name || ''), ' ', h('span', {class: 'muted'}, compact(Object.fromEntries(
          Object.entries(payload).filter(([key, value]) => key !== 'name' && key !== 'ordinal' && value !== null))))];
      default:
        return h('span', {class: 'mono'}, compact(payload));
    }
  }

  function category(type) {
    if (type === 'job.completed' || type === 'step.completed') return 'good';
    if (type === 'job.failed' || type === 'step.failed' || type === 'job.lease_expired' || type === 'job.timed_out') return 'bad';
    if (type === 'job.cancelled') return 'muted';
    if (type.startsWith('job.')) return 'job';
    if (type.startsWith('step.')) return 'step';
    return 'custom';
  }

  function shows(type) {
    return !(hideProgress && PROGRESS_TYPES.has(type)) && (!onlyType || type === onlyType);
  }

  function showCount() {
    const total = `${count(seen.size)} ${seen.size === 1 ? 'event' : 'events'}`;
    eventCount.textContent = shownEvents === seen.size ? total : `${total} · ${count(shownEvents)} shown`;
    noneShown.hidden = shownEvents > 0 || seen.size === 0;
  }

  function filterEvents() {
    shownEvents = 0;
    for (const item of log.children) {
      item.hidden = !shows(item.dataset.type);
      if (!item.hidden) shownEvents += 1;
    }
    showCount();
    if (follow) log.scrollTop = log.scrollHeight;
  }

  /** Count an event's type; a type seen for the first time joins the filter's options. */
  function countType(type) {
    const known = typeCounts.get(type);
    if (known) {
      known.count += 1;
      known.option.textContent = `${type} (${count(known.count)})`;
      return;
    }
    const option = h('option', {value: type}, `${type} (1)`);
    typeCounts.set(type, {count: 1, option});
    const after = [...typeFilter.options].slice(1).find((other) => other.value > type) || null;
    typeFilter.insertBefore(option, after);
  }

  function addEvent(event, {live: arrived = false} = {}) {
    if (!event || typeof event.seq !== 'number' || seen.has(event.seq)) return false;
    seen.add(event.seq);
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    const item = h('li', {class: ['event', `event-${category(event.type)}`, arrived ? 'flash-new' : null], 'data-testid': 'event', 'data-type': event.type, 'data-seq': String(event.seq)},
      h('span', {class: 'event-seq mono'}, `#${event.seq}`),
      h('time', {class: 'event-time mono', datetime: event.timestamp, title: exact(event.timestamp)}, clock(event.timestamp)),
      h('span', {class: 'event-type mono'}, event.type),
      h('span', {class: 'event-detail'}, eventDetail(event)),
      h('span', {class: 'event-actor mono', title: event.actor}, actorLabel(event.actor)));
    item.hidden = !shows(event.type);
    if (!item.hidden) shownEvents += 1;
    countType(event.type);
    // Events normally arrive in order; one filled in from a gap goes where it belongs.
    let before = null;
    if (event.seq < lastSeq) {
      before = [...log.children].find((child) => Number(child.dataset.seq) > event.seq) || null;
    }
    log.insertBefore(item, before);
    lastSeq = Math.max(lastSeq, event.seq);
    showCount();
    if (event.type === 'job.progress' && event.payload) progressMessage = event.payload.message || '';
    if (follow && (nearBottom || !arrived)) log.scrollTop = log.scrollHeight;
    return true;
  }

  // -- loading and live updates --------------------------------------------------------------
  async function refreshJob() {
    try {
      const detail = await get(ws(`/jobs/${jobId}`));
      if (stopped) return;
      for (const event of detail.events || []) addEvent(event, {live: true});
      steps = detail.steps || [];
      renderJob(detail);
      renderSteps();
    } catch (error) {
      if (!stopped) toast(`Could not refresh the job: ${error.detail || error.message}`, {kind: 'error'});
    }
  }

  async function refreshSteps() {
    try {
      const found = await get(ws(`/jobs/${jobId}/steps`));
      if (stopped) return;
      steps = found.data || [];
      renderSteps();
    } catch {
      // the next event or refresh tries again
    }
  }

  async function fillGap() {
    try {
      const found = await get(ws(`/jobs/${jobId}/events`), {query: {after_seq: lastSeq}});
      if (!stopped) for (const event of found.data || []) addEvent(event, {live: true});
    } catch {
      // the stream goes on; the job refresh also brings every event
    }
  }

  const jobSoon = throttle(refreshJob, 300);
  const stepsSoon = throttle(refreshSteps, 400);

  function onEvent(type, data) {
    if (stopped || data.job_id !== jobId || typeof data.seq !== 'number') return;
    if (arrivedWhileLoading) {
      arrivedWhileLoading.push([type, data]);
      return;
    }
    if (data.seq > lastSeq + 1) fillGap();
    if (!addEvent(data, {live: true})) return;
    if (type === 'job.progress') {
      const value = data.payload && data.payload.progress_percent;
      if (typeof value === 'number' && job && !TERMINAL.has(job.status)) {
        job.progress_percent = value;
        bar.update(value, job.status);
        percent.textContent = `${value}%`;
        message.textContent = progressMessage;
        message.hidden = !progressMessage;
      }
    } else if (type.startsWith('job.')) {
      jobSoon();
    } else if (type.startsWith('step.')) {
      stepsSoon();
    }
  }

  async function load() {
    let detail;
    try {
      detail = await get(ws(`/jobs/${jobId}`));
    } catch (error) {
      if (stopped) return;
      if (error.status === 404 || error.status === 422) {
        replace(page,
          h('nav', {class: 'breadcrumb', 'aria-label': 'Breadcrumb'}, h('a', {href: '#/jobs'}, 'Jobs')),
          h('h1', {class: 'page-title', tabindex: '-1'}, 'Job not found'),
          h('p', {'data-testid': 'not-found'}, 'There is no job ', h('code', {}, jobId), ' in this workspace.'));
      } else {
        replace(page, h('h1', {class: 'page-title', tabindex: '-1'}, 'Job'), errorBox(error, {retry: load}));
      }
      return;
    }
    if (stopped) return;
    layout();
    for (const event of detail.events || []) addEvent(event);
    steps = detail.steps || [];
    renderJob(detail);
    renderSteps();
    title.focus({preventScroll: true});
    const arrived = arrivedWhileLoading;
    arrivedWhileLoading = null;
    for (const [type, event] of arrived) onEvent(type, event);
    if (lookAgainWhenLoaded) jobSoon();
  }

  // Subscribed before the first read, so that no event falls between the two.
  const stopEvents = onWorkspaceEvent(onEvent);
  const stopState = onStreamState((state) => { if (!job || !TERMINAL.has(job.status)) live.set(state); });
  const stopOpen = onStreamOpen(() => {
    if (job) jobSoon();
    else lookAgainWhenLoaded = true;
  });
  load();

  return () => {
    stopped = true;
    clearTimeout(waitingTimer);
    clearTimeout(dueTimer);
    jobSoon.cancel();
    stepsSoon.cancel();
    stopEvents();
    stopState();
    stopOpen();
  };
}
