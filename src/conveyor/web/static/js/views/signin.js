// Sign in with an API key: the server trades it for an HttpOnly session cookie. The key is
// sent once in a POST body, never put in a URL or kept by the page.

import {post} from '../api.js';
import {h, icon} from '../dom.js';

export function mountSignIn(main, {message, onSignedIn}) {
  const input = h('input', {
    id: 'api-key', name: 'api_key', type: 'password', class: 'input input-wide', required: true,
    autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', 'aria-describedby': 'api-key-help',
    placeholder: 'Paste an API key', 'data-testid': 'api-key',
  });
  const error = h('div', {class: 'alert alert-error', role: 'alert', hidden: true, 'data-testid': 'sign-in-error'});
  const submit = h('button', {class: 'button button-primary button-wide', type: 'submit'}, 'Sign in');
  const form = h('form', {class: 'signin-form', novalidate: true},
    h('label', {for: 'api-key', class: 'label'}, 'API key'),
    input,
    h('p', {id: 'api-key-help', class: 'help'},
      'A key belongs to one workspace and has a role (client, worker or admin); an instance admin key ',
      'may act in every workspace, and picks one after signing in. On its first start ',
      h('code', {}, 'conveyor serve'), ' saves an admin key to ', h('code', {}, 'conveyor-admin.key'),
      '; more come from ', h('code', {}, 'conveyor key create'), ' or from an admin.'),
    error,
    submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      error.textContent = 'Paste an API key first.';
      error.hidden = false;
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    error.hidden = true;
    try {
      const found = await post('/v1/session', {api_key: key});
      input.value = '';
      onSignedIn(found);
    } catch (failure) {
      // 401: no such key; 422: not even the shape of one (too long, control characters).
      // To someone pasting a key both say the same: this is not a key that works.
      error.textContent = failure.status === 401 || failure.status === 422
        ? 'That API key is not valid (unknown, mistyped or revoked).'
        : failure.detail || String(failure);
      error.hidden = false;
      submit.disabled = false;
      submit.textContent = 'Sign in';
      input.select();
      input.focus();
    }
  });

  main.append(h('section', {class: 'signin card', 'aria-labelledby': 'signin-title'},
    h('div', {class: 'signin-brand'}, icon('logo', 'brand-logo brand-logo-large'), h('span', {}, 'Conveyor')),
    h('h1', {id: 'signin-title', class: 'signin-title', tabindex: '-1'}, 'Sign in to the dashboard'),
    message ? h('p', {class: 'alert alert-info', 'data-testid': 'sign-in-message'}, message) : null,
    form));
  input.focus();
  return () => {};
}
