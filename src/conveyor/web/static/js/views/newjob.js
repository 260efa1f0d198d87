// The "new job" dialog: type, priority, JSON payload (and a few optional fields, among them
// "hold": create the job PENDING, to be released from its page, a timeout per attempt, and
// a time to run it, "not before", in the browser's time zone).

import {post, ws} from '../api.js';
import {h} from '../dom.js';
import {JOB_TYPE, JOB_TYPE_HINT} from '../format.js';
import {field, openFormDialog} from '../forms.js';
import {JsonText} from '../json.js';

const TIMEOUT_LIMIT_SECONDS = 7 * 24 * 3600;

/** Open the dialog; resolves with the created job, or null when dismissed. */
export function openNewJobDialog({types = [], initial = {}} = {}) {
  const typeInput = h('input', {
    id: 'new-type', class: 'input input-wide mono', required: true, autocomplete: 'off', spellcheck: 'false',
    list: 'new-type-options', placeholder: 'email.send', value: initial.type || '', 'aria-describedby': 'new-type-help',
  });
  const priority = h('select', {id: 'new-priority', class: 'input'},
    Array.from({length: 10}, (_, index) => {
      const value = index + 1;
      const note = value === 1 ? ' (most urgent)' : value === 5 ? ' (default)' : value === 10 ? ' (least urgent)' : '';
      return h('option', {value: String(value), selected: value === (initial.priority || 5)}, `${value}${note}`);
    }));
  const attempts = h('input', {id: 'new-attempts', class: 'input', type: 'number', min: '1', max: '100', value: String(initial.max_attempts || 1)});
  const timeout = h('input', {
    id: 'new-timeout', class: 'input', type: 'number', min: '0', step: 'any', placeholder: 'none',
    value: initial.timeout_seconds ? String(initial.timeout_seconds) : '', 'aria-describedby': 'new-timeout-help',
  });
  const agentTask = h('input', {id: 'new-agent-task', class: 'input input-wide mono', autocomplete: 'off', value: initial.agent_task_id || ''});
  const concurrencyKey = h('input', {id: 'new-concurrency-key', class: 'input input-wide mono', autocomplete: 'off', maxlength: '200', value: initial.concurrency_key || '', 'aria-describedby': 'new-concurrency-key-help'});
  const runAt = h('input', {id: 'new-run-at', class: 'input', type: 'datetime-local', step: '1', 'aria-describedby': 'new-run-at-help'});
  const hold = h('input', {id: 'new-hold', type: 'checkbox', checked: Boolean(initial.hold), 'aria-describedby': 'new-hold-help'});
  const payload = h('textarea', {
    id: 'new-payload', class: 'input input-wide mono textarea', rows: '9', spellcheck: 'false',
    'aria-describedby': 'new-payload-help',
  });
  payload.value = initial.payload === undefined ? '{\n  \n}' : JSON.stringify(initial.payload, null, 2);

  function prepare(fail) {
    const type = typeInput.value.trim();
    if (!JOB_TYPE.test(type)) {
      fail(`The type ${JOB_TYPE_HINT}`, typeInput);
      return undefined;
    }
    // Sent as typed, not as JavaScript reads it back: every digit of a large integer, 1.0
    // as 1.0; the server's own rules then decide (integers up to 64 bits).
    let body;
    try {
      body = new JsonText(payload.value.trim() || '{}');
    } catch (problem) {
      fail(`The payload is not valid JSON: ${problem.message}`, payload);
      return undefined;
    }
    const maxAttempts = Number(attempts.value || 1);
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
      fail('Max attempts must be a whole number, 1 or more.', attempts);
      return undefined;
    }
    const timeoutText = timeout.value.trim();
    const timeoutSeconds = Number(timeoutText);
    if (timeoutText && !(timeoutSeconds > 0 && timeoutSeconds <= TIMEOUT_LIMIT_SECONDS)) {
      fail('The timeout must be a number of seconds, more than 0 and at most 7 days.', timeout);
      return undefined;
    }
    let when;
    if (runAt.value) {
      when = new Date(runAt.value);  // a datetime-local value is the browser's local time
      if (Number.isNaN(when.getTime())) {
        fail('Run at must be a date and a time.', runAt);
        return undefined;
      }
    }
    const request = {type, payload: body, priority: Number(priority.value), max_attempts: maxAttempts};
    if (when) request.run_at = when.toISOString();
    if (timeoutText) request.timeout_seconds = timeoutSeconds;
    if (agentTask.value.trim()) request.agent_task_id = agentTask.value.trim();
    if (concurrencyKey.value.trim()) request.concurrency_key = concurrencyKey.value.trim();
    if (hold.checked) request.hold = true;
    return request;
  }

  return openFormDialog({
    titleId: 'new-job-title',
    title: 'New job',
    testid: 'new-job-dialog',
    errorTestid: 'new-job-error',
    submitLabel: 'Create job',
    content: [
      h('datalist', {id: 'new-type-options'}, types.map((type) => h('option', {value: type}))),
      h('div', {class: 'field-row'},
        field('new-type', 'Type', typeInput, `It ${JOB_TYPE_HINT} (what workers claim by).`),
        field('new-priority', 'Priority', priority)),
      field('new-payload', 'Payload (JSON)', payload, 'The job\'s input, given to the worker as is.'),
      h('div', {class: 'field-row'},
        field('new-agent-task', 'Agent task id (optional)', agentTask),
        field('new-attempts', 'Max attempts', attempts)),
      h('div', {class: 'field-row'},
        field('new-timeout', 'Timeout in seconds (optional)', timeout,
          'An attempt that runs longer fails as timed out (and is retried while attempts are left).'),
        field('new-run-at', 'Run at (optional)', runAt, 'Not before then, your local time; empty: now.')),
      field('new-concurrency-key', 'Concurrency key (optional)', concurrencyKey, 'The limit of this name governs it (a customer, a model API…); jobs of one key take turns with other keys.'),
      h('div', {class: 'field field-check'},
        h('label', {class: 'check check-left', for: 'new-hold'}, hold, 'Hold it'),
        h('p', {class: 'help', id: 'new-hold-help'}, 'Created Pending: no worker claims it until you release it from its page.')),
    ],
    focus: typeInput,
    controls: [typeInput, payload, attempts, timeout, runAt],
    prepare,
    send: (request) => post(ws('/jobs'), request),
  });
}
