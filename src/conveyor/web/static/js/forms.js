// Forms, one way everywhere: labelled fields; on submit, the page's own checks first, then
// the request with the submit button off while it runs; a problem shows in the form's
// error box and marks the field it is about (aria-invalid, focused; typing in it clears the
// mark). Form dialogs are native <dialog>s (focus is trapped, Escape closes them) that
// resolve with what the request answered, or null when dismissed.

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

/** The control of `fields` (server field names → controls) a problem is about: the one
 * named by its first error's field, or by the longest name that field starts with
 * (`retention.failed_days.int` is about `retention.failed_days`). */
function controlFor(fields, problem) {
  const errors = (problem.problem && problem.problem.errors) || [];
  if (!errors.length) return null;
  const name = String(errors[0].field);
  const matches = Object.keys(fields).filter((key) => name === key || name.startsWith(`${key}.`));
  matches.sort((a, b) => b.length - a.length);
  return matches.length ? fields[matches[0]] : null;
}

/**
 * Handle `form`'s submit. `prepare(fail)` runs the page's checks: it answers what to send,
 * or calls `fail(message, control)` and answers undefined. `send(request)` makes the
 * request and `done(answer)` takes its answer. A refused request shows the server's
 * detail, marking the control of `fields` it is about (see controlFor). `controls` are the
 * fields that may be marked. Answers `fail`, for the page's own use.
 */
export function handleSubmit({form, submit, error, controls = [], fields = {}, prepare, send, done}) {
  const fail = (message, control) => {
    error.textContent = message;
    error.hidden = false;
    if (control) {
      control.setAttribute('aria-invalid', 'true');
      control.focus();
    }
  };
  for (const control of controls) {
    control.addEventListener('input', () => control.removeAttribute('aria-invalid'));
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    error.hidden = true;
    const request = prepare(fail);
    if (request === undefined) return;
    submit.disabled = true;
    try {
      done(await send(request));
    } catch (problem) {
      fail(problem.detail || String(problem), controlFor(fields, problem));
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
