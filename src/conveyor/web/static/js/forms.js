// Forms, one way everywhere: labelled fields; on submit, the page's own checks first, then
// the request with the submit button off while it runs. What is wrong shows in the form's
// error box and beside each field it is about: the field is marked (aria-invalid, its
// message named by its aria-describedby), the first one focused, and typing in it clears
// its mark. A refused request (a problem+json 422) marks every field its `errors` name.
// Form dialogs are native <dialog>s (focus is trapped, Escape closes them) that resolve
// with what the request answered, or null when dismissed.

import {h} from './dom.js';

/** A control with its label and, optionally, help text (id `${id}-help`, for the control's
 * aria-describedby). */
export function field(id, label, control, help) {
  return h('div', {class: 'field'},
    h('label', {class: 'label', for: id}, label),
    control,
    help ? h('p', {class: 'help', id: `${id}-help`}, help) : null);
}

/** A form's error box: hidden until something is wrong. */
export function formError(testid) {
  return h('div', {class: 'alert alert-error', role: 'alert', hidden: true, 'data-testid': testid});
}

const FIELD_ERROR = 'field-error';

function describedBy(control) {
  return (control.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
}

/** Mark `control` invalid with `message` beside it (right after it, so it reads as the
 * field's own), named by its aria-describedby so a screen reader says it with the field. */
export function markInvalid(control, message) {
  control.setAttribute('aria-invalid', 'true');
  if (!message || !control.id) return;
  const id = `${control.id}-error`;
  let note = document.getElementById(id);
  if (!note) {
    note = h('p', {class: FIELD_ERROR, id, 'data-testid': FIELD_ERROR});
    control.after(note);
    control.setAttribute('aria-describedby', [...describedBy(control), id].join(' '));
  }
  note.textContent = message;
}

export function clearInvalid(control) {
  control.removeAttribute('aria-invalid');
  if (!control.id) return;
  const id = `${control.id}-error`;
  const note = document.getElementById(id);
  if (note) note.remove();
  const rest = describedBy(control).filter((item) => item !== id);
  if (rest.length) control.setAttribute('aria-describedby', rest.join(' '));
  else control.removeAttribute('aria-describedby');
}

/** A server's message as a sentence of its own: "must be between 1 and 1000" → "Must be…". */
function sentence(message) {
  const text = String(message || '').trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** What a refused request says about the controls of `fields` (server field names →
 * controls), as a Map from control to message: for each error of its problem's `errors`
 * ({field, message}, see api/problems.py), the control named by its field or by the
 * longest name that field starts with (`retention.failed_days.int` is about
 * `retention.failed_days`); a control's first message only (a value that fits none of a
 * union's shapes is refused once per shape, and the first says the most). */
export function fieldErrors(fields, refusal) {
  const errors = refusal && refusal.problem && Array.isArray(refusal.problem.errors) ? refusal.problem.errors : [];
  const found = new Map();
  for (const item of errors) {
    const name = String(item.field);
    const matches = Object.keys(fields).filter((key) => fields[key] && (name === key || name.startsWith(`${key}.`)));
    if (!matches.length) continue;
    matches.sort((a, b) => b.length - a.length);
    const control = fields[matches[0]];
    if (!found.has(control)) found.set(control, sentence(item.message));
  }
  return found;
}

/**
 * Handle `form`'s submit. `prepare(fail)` runs the page's checks (it may ask the operator
 * first: it may answer a promise): it answers what to send, or calls `fail(message,
 * control)` and answers undefined. `send(request)` makes the request and `done(answer)`
 * takes its answer. A refused request shows its detail (or an error's message) in the
 * box and marks each control of `fields` its errors name (see fieldErrors). `controls`
 * are other fields the page's checks may mark. Answers `fail`, for the page's own use.
 */
export function handleSubmit({form, submit, error, controls = [], fields = {}, prepare, send, done}) {
  const markable = [...new Set([...controls, ...Object.values(fields).filter(Boolean)])];
  const fail = (message, control) => {
    error.textContent = message;
    error.hidden = false;
    if (control) {
      markInvalid(control, message);
      control.focus();
    }
  };
  for (const control of markable) {
    control.addEventListener('input', () => clearInvalid(control));
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    for (const control of markable) clearInvalid(control);
    const request = await prepare(fail);
    if (request === undefined) return;
    submit.disabled = true;
    try {
      done(await send(request));
    } catch (refusal) {
      fail(refusal.detail || refusal.message || String(refusal));
      const marked = fieldErrors(fields, refusal);
      for (const [control, message] of marked) markInvalid(control, message);
      const [first] = marked.keys();
      if (first) first.focus();
    } finally {
      submit.disabled = false;
    }
  });
  return fail;
}

/**
 * Open a modal form dialog: a title, `content` (its fields), an error box, Cancel and a
 * submit button labelled `submitLabel`; submitting works as `handleSubmit` (with `prepare`,
 * `send`, `controls`, `fields`) and closes the dialog on success. Resolves with what the
 * request answered, or null when dismissed (Cancel, Escape). `focus`: the control focused
 * first.
 */
export function openFormDialog({
  titleId, title, testid, errorTestid, content, submitLabel, submitTestid, focus,
  controls, fields, prepare, send,
}) {
  return new Promise((resolve) => {
    const error = formError(errorTestid);
    const submit = h('button', {class: 'button button-primary', type: 'submit', 'data-testid': submitTestid}, submitLabel);
    const cancel = h('button', {class: 'button', type: 'button'}, 'Cancel');
    const form = h('form', {class: 'dialog-form', novalidate: true},
      h('h2', {class: 'dialog-title', id: titleId}, title),
      content,
      error,
      h('div', {class: 'dialog-actions'}, cancel, submit));
    const dialog = h('dialog', {class: 'dialog dialog-wide', 'aria-labelledby': titleId, 'data-testid': testid}, form);

    let closed = false;
    const finish = (answer) => {
      if (closed) return;
      closed = true;
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(null));
    dialog.addEventListener('close', () => finish(null));
    handleSubmit({form, submit, error, controls, fields, prepare, send, done: finish});

    document.body.append(dialog);
    dialog.showModal();
    focus.focus();
  });
}
