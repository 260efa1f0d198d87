// Settings (admin only): how long the workspace keeps its finished jobs, for each final
// status (its own value, or the instance's default, marked as such), and its weight. An
// admin changes the retention; only an instance admin changes the weight, which takes
// workers from the other workspaces.

import {can, get, patch, session, ws} from '../api.js';
import {h, replace} from '../dom.js';
import {count, plural} from '../format.js';
import {field, formError, handleSubmit} from '../forms.js';
import {confirmDialog, errorBox, toast} from '../ui.js';

const RETENTION = [
  {name: 'completed_days', id: 'completed', label: 'Completed jobs'},
  {name: 'failed_days', id: 'failed', label: 'Failed jobs'},
  {name: 'cancelled_days', id: 'cancelled', label: 'Cancelled jobs'},
];
const INHERIT = 'default'; // sent to drop the workspace's own value for the instance's
const WHOLE = /^\d+$/;
// A weight's bounds, as the server has them (domain/capacity.py; test_rules.py holds them
// equal): the page says the range before it asks.
const WEIGHT_MIN = 1;
const WEIGHT_MAX = 1000;

/** How long a retention value keeps a job: "14 days", "forever", "until the next pruning". */
export function keptText(days) {
  if (days === null || days === undefined) return 'forever';
  if (days === 0) return 'until the next pruning';
  return `${count(days)} ${days === 1 ? 'day' : 'days'}`;
}

function sourceTag(source, testid) {
  const own = source === 'workspace';
  return h('span', {class: ['tag', own ? 'tag-own' : 'tag-default'], 'data-testid': testid, 'data-source': source},
    own ? 'this workspace' : 'instance default');
}

/** One final status's retention: what applies now and where it comes from, and the
 * controls to change it (the instance's default, a number of days, or forever). */
function retentionRow(item, settings) {
  const value = settings.retention[item.name];
  const source = settings.source.retention[item.name];
  const fallback = settings.instance_defaults.retention[item.name];
  const modeId = `retention-${item.id}-mode`;
  const daysId = `retention-${item.id}-days`;
  const mode = h('select', {id: modeId, class: 'input', 'data-testid': 'retention-mode'},
    h('option', {value: INHERIT}, `Instance default (${keptText(fallback)})`),
    h('option', {value: 'days'}, 'A number of days'),
    h('option', {value: 'forever'}, 'Forever'));
  const own = source === 'workspace';
  mode.value = !own ? INHERIT : value === null ? 'forever' : 'days';
  const days = h('input', {
    id: daysId, class: 'input', type: 'number', min: '0', step: '1', inputmode: 'numeric',
    'data-testid': 'retention-days', value: own && value !== null ? String(value) : '',
    'aria-describedby': `${daysId}-help`,
  });
  const daysField = field(daysId, 'Days', days, '0: deleted at the next pruning.');
  const showDays = () => { daysField.hidden = mode.value !== 'days'; };
  mode.addEventListener('change', () => {
    showDays();
    if (mode.value === 'days') {
      if (!days.value) days.value = fallback === null ? '' : String(fallback);
      days.focus();
    }
  });
  showDays();
  const titleId = `retention-${item.id}-title`;
  const row = h('div', {class: 'retention-row', role: 'group', 'aria-labelledby': titleId, 'data-testid': 'retention-row', 'data-name': item.name},
    h('div', {class: 'retention-now'},
      h('p', {class: 'retention-name', id: titleId}, item.label),
      h('p', {class: 'retention-value'},
        h('span', {'data-testid': 'retention-value'}, keptText(value)), ' ', sourceTag(source, 'retention-source'))),
    field(modeId, 'Kept', mode),
    daysField);
  /** What to send for this status (`value`), whether that changes it, and how many days
   * it keeps a job then (`keeps`: null, forever) against now (`kept`). */
  const change = (fail) => {
    let wanted;
    if (mode.value === INHERIT) wanted = INHERIT;
    else if (mode.value === 'forever') wanted = null;
    else if (WHOLE.test(days.value.trim())) wanted = Number(days.value.trim());
    else {
      fail(`${item.label}: the days must be a whole number, 0 or more.`, days);
      return {failed: true};
    }
    const current = own ? value : INHERIT;
    return {value: wanted, changed: wanted !== current, kept: value, keeps: wanted === INHERIT ? fallback : wanted};
  };
  return {row, change, days};
}

/** The confirmation a shorter retention asks for: what it deletes. */
function shortenedRetention(sooner) {
  const parts = sooner.map(({item, days}, index) => {
    const label = index ? item.label.toLowerCase() : item.label;
    return `${label} older than ${plural(days, 'day')}`;
  });
  const which = parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}` : parts[0];
  return {
    title: 'Delete finished jobs sooner?',
    body: `${which} will be deleted, with their steps and events, at the next pruning `
      + '(within a minute, by default). This cannot be undone.',
    confirm: 'Shorten retention', cancel: 'Keep them', danger: true,
  };
}

function retentionForm(settings, saved) {
  const rows = RETENTION.map((item) => ({item, ...retentionRow(item, settings)}));
  const error = formError('retention-error');
  const submit = h('button', {class: 'button button-primary', type: 'submit', 'data-testid': 'save-retention'}, 'Save retention');
  const form = h('form', {class: 'card retention-form', novalidate: true, 'aria-labelledby': 'retention-title', 'data-testid': 'retention-form'},
    h('h2', {class: 'card-title', id: 'retention-title'}, 'Retention'),
    h('p', {class: 'card-note'},
      'Finished jobs are deleted, with their steps and events, this long after they end. ',
      'What the workspace does not set follows the instance\'s default, whatever it becomes.'),
    rows.map(({row}) => row),
    error,
    h('div', {class: 'form-actions'}, submit));
  handleSubmit({
    form, submit, error,
    controls: rows.map(({days}) => days),
    fields: Object.fromEntries(rows.map(({item, days}) => [`retention.${item.name}`, days])),
    async prepare(fail) {
      const retention = {};
      const sooner = [];
      for (const {item, change} of rows) {
        const wanted = change(fail);
        if (wanted.failed) return undefined;
        if (!wanted.changed) continue;
        retention[item.name] = wanted.value;
        if (wanted.keeps !== null && (wanted.kept === null || wanted.keeps < wanted.kept)) {
          sooner.push({item, days: wanted.keeps});
        }
      }
      // A shorter retention deletes at the next pruning what it no longer keeps, for good:
      // the operator says yes to that first, knowing what goes.
      if (sooner.length && !(await confirmDialog(shortenedRetention(sooner)))) {
        submit.focus();
        return undefined;
      }
      return {retention};
    },
    send: (request) => patch(ws('/settings'), request),
    done: (answer) => {
      toast('Retention saved', {kind: 'success'});
      saved(answer, 'save-retention');
    },
  });
  return form;
}

function weightCard(settings, saved) {
  const card = h('section', {class: 'card weight-card', 'aria-labelledby': 'weight-title', 'data-testid': 'weight-card'},
    h('h2', {class: 'card-title', id: 'weight-title'}, 'Weight'),
    h('p', {class: 'weight-now'},
      h('span', {class: 'weight-value', 'data-testid': 'weight-value'}, String(settings.weight)), ' ',
      sourceTag(settings.source.weight, 'weight-source')),
    h('p', {class: 'card-note'},
      'Workers that serve several workspaces give each workspace with work turns in proportion to its weight: ',
      'one of weight 3 gets three jobs for each job of one of weight 1. Every workspace starts at 1.'));
  if (!can('set_weight')) {
    card.append(h('p', {class: 'alert alert-info', 'data-testid': 'weight-read-only'},
      h('strong', {}, 'Set by an instance admin. '),
      'The weight takes workers from the other workspaces, so only an instance admin key changes it; ',
      'you signed in with a key of this workspace.'));
    return card;
  }
  const weight = h('input', {
    id: 'settings-weight', class: 'input', type: 'number', step: '1', inputmode: 'numeric',
    value: String(settings.weight), 'data-testid': 'weight-input',
  });
  const error = formError('weight-error');
  const submit = h('button', {class: 'button button-primary', type: 'submit', 'data-testid': 'save-weight'}, 'Save weight');
  const form = h('form', {class: 'weight-form', novalidate: true, 'aria-label': 'Change the weight'},
    h('div', {class: 'field-row'}, field('settings-weight', 'Weight', weight), h('div', {class: 'field field-end'}, submit)),
    error);
  handleSubmit({
    form, submit, error,
    controls: [weight],
    fields: {weight},
    prepare(fail) {
      const text = weight.value.trim();
      const value = WHOLE.test(text) ? Number(text) : NaN; // not 0x10, 1e2 or empty
      if (!Number.isInteger(value) || value < WEIGHT_MIN || value > WEIGHT_MAX) {
        fail(`The weight must be a whole number from ${WEIGHT_MIN} to ${WEIGHT_MAX}.`, weight);
        return undefined;
      }
      return {weight: value};
    },
    send: (request) => patch(ws('/settings'), request),
    done: (answer) => {
      toast(`Weight saved: ${answer.weight}`, {kind: 'success'});
      saved(answer, 'save-weight');
    },
  });
  card.append(form);
  return card;
}

export function mountSettings(main) {
  document.title = 'Settings · Conveyor';
  if (!can('manage_settings')) {
    main.append(h('div', {class: 'page'},
      h('h1', {class: 'page-title', tabindex: '-1'}, 'Settings'),
      h('div', {class: 'alert alert-warning', role: 'alert', 'data-testid': 'not-allowed'},
        h('strong', {}, 'Not allowed. '),
        `Settings are managed with an admin key; you signed in with a ${session().role} key.`),
      h('p', {}, h('a', {href: '#/'}, 'Back to the overview'))));
    return () => {};
  }

  let stopped = false;
  const body = h('div', {class: 'settings-body', 'aria-busy': 'true'}, h('p', {class: 'muted'}, 'Loading…'));

  function render(settings, focusTestid = null) {
    replace(body, h('div', {class: 'grid-2 grid-settings'},
      retentionForm(settings, render),
      weightCard(settings, render)));
    body.setAttribute('aria-busy', 'false');
    if (focusTestid) {
      const target = body.querySelector(`[data-testid="${focusTestid}"]`);
      if (target) target.focus();
    }
  }

  async function load() {
    try {
      const settings = await get(ws('/settings'));
      if (!stopped) render(settings);
    } catch (error) {
      if (!stopped) replace(body, errorBox(error, {retry: load}));
    }
  }

  main.append(h('div', {class: 'page'},
    h('div', {class: 'page-head'}, h('div', {},
      h('h1', {class: 'page-title', tabindex: '-1'}, 'Settings'),
      h('p', {class: 'page-subtitle'}, 'What workspace ', h('strong', {}, session().workspace.slug),
        ' sets for itself, over the instance\'s defaults.'))),
    body));
  load();
  return () => { stopped = true; };
}
