// API keys (admin only): list, create (the token is shown once), revoke.

import {can, del, get, post, session, ws} from '../api.js';
import {h, icon, replace} from '../dom.js';
import {clock, exact, shortId} from '../format.js';
import {confirmDialog, copyButton, emptyState, errorBox, timeAgo, toast} from '../ui.js';

const ROLES = [
  {value: 'client', note: 'create, read, cancel and retry jobs; follow streams'},
  {value: 'worker', note: 'claim jobs and report on them; read'},
  {value: 'admin', note: 'everything in the workspace, including keys'},
];

export function mountKeys(main) {
  document.title = 'API keys · Conveyor';
  if (!can('manage_keys')) {
    main.append(h('div', {class: 'page'},
      h('h1', {class: 'page-title', tabindex: '-1'}, 'API keys'),
      h('div', {class: 'alert alert-warning', role: 'alert', 'data-testid': 'not-allowed'},
        h('strong', {}, 'Not allowed. '),
        `API keys are managed with an admin key; you signed in with a ${session().role} key.`),
      h('p', {}, h('a', {href: '#/'}, 'Back to the overview'))));
    return () => {};
  }

  let stopped = false;
  const listBox = h('div', {class: 'card card-flush'}, h('p', {class: 'muted pad'}, 'Loading…'));
  const issued = h('div', {'aria-live': 'polite'});

  const nameInput = h('input', {id: 'key-name', class: 'input input-wide', maxlength: '200', autocomplete: 'off', placeholder: 'e.g. billing-service'});
  const roleSelect = h('select', {id: 'key-role', class: 'input', 'aria-describedby': 'key-role-help'},
    ROLES.map((role) => h('option', {value: role.value, selected: role.value === 'client'}, role.value)));
  const roleHelp = h('p', {id: 'key-role-help', class: 'help'});
  const showRoleHelp = () => { roleHelp.textContent = ROLES.find((role) => role.value === roleSelect.value).note; };
  roleSelect.addEventListener('change', showRoleHelp);
  showRoleHelp();
  const createError = h('div', {class: 'alert alert-error', role: 'alert', hidden: true});
  const createButton = h('button', {class: 'button button-primary', type: 'submit', 'data-testid': 'create-key'}, icon('plus'), h('span', {}, 'Create key'));
  const form = h('form', {class: 'card key-form', 'aria-labelledby': 'new-key-title'},
    h('h2', {id: 'new-key-title', class: 'card-title'}, 'New key'),
    h('div', {class: 'field-row'},
      h('div', {class: 'field field-grow'}, h('label', {class: 'label', for: 'key-name'}, 'Name (optional)'), nameInput),
      h('div', {class: 'field'}, h('label', {class: 'label', for: 'key-role'}, 'Role'), roleSelect),
      h('div', {class: 'field field-end'}, createButton)),
    roleHelp, createError);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    createError.hidden = true;
    createButton.disabled = true;
    try {
      const body = {role: roleSelect.value};
      if (nameInput.value.trim()) body.name = nameInput.value.trim();
      const key = await post(ws('/keys'), body);
      nameInput.value = '';
      showToken(key);
      load();
    } catch (error) {
      createError.textContent = error.detail || String(error);
      createError.hidden = false;
    } finally {
      createButton.disabled = false;
    }
  });

  function showToken(key) {
    const token = h('input', {class: 'input input-wide mono token', readonly: true, value: key.token, 'aria-label': 'The new API key', 'data-testid': 'new-key-token'});
    token.addEventListener('focus', () => token.select());
    const dismiss = h('button', {class: 'button button-ghost', type: 'button'}, 'Done, I saved it');
    dismiss.addEventListener('click', () => {
      issued.replaceChildren();
      nameInput.focus();
    });
    replace(issued, h('section', {class: 'card token-card', 'data-testid': 'issued-key'},
      h('h2', {class: 'card-title'}, `New ${key.role} key${key.name ? ` “${key.name}”` : ''}`),
      h('p', {}, h('strong', {}, 'Copy it now: it is shown this once. '),
        'Conveyor keeps only a hash, so it cannot show it again; if it is lost, revoke it and create another.'),
      h('div', {class: 'token-row'}, token, copyButton(key.token, 'Copy key', {testid: 'copy-token'})),
      h('div', {class: 'token-actions'}, dismiss)));
    token.focus();
  }

  async function revoke(key, button) {
    const own = key.id === session().key_id;
    const sure = await confirmDialog({
      title: `Revoke ${key.name ? `“${key.name}”` : `key ${shortId(key.id)}`}?`,
      body: own
        ? 'This is the key you signed in with: revoking it signs you out, here and everywhere it is used.'
        : `Every request made with this ${key.role} key is refused from now on, and its open streams end. This cannot be undone.`,
      confirm: 'Revoke key', cancel: 'Keep it', danger: true,
    });
    if (!sure) {
      button.focus();
      return;
    }
    button.disabled = true;
    try {
      await del(ws(`/keys/${key.id}`));
      toast(`Key ${key.name || shortId(key.id)} revoked`, {kind: 'success'});
      if (!stopped) load();
    } catch (error) {
      toast(`Could not revoke: ${error.detail || error.message}`, {kind: 'error'});
      button.disabled = false;
    }
  }

  function render(keys) {
    if (!keys.length) {
      replace(listBox, emptyState('No keys', 'Create one above.'));
      return;
    }
    const sorted = [...keys].sort((a, b) => (a.revoked_at ? 1 : 0) - (b.revoked_at ? 1 : 0) || b.created_at.localeCompare(a.created_at));
    replace(listBox, h('div', {class: 'table-wrap'}, h('table', {class: 'table table-stack table-keys', 'data-testid': 'keys-table'},
      h('thead', {}, h('tr', {},
        h('th', {scope: 'col'}, 'Name'), h('th', {scope: 'col'}, 'Role'), h('th', {scope: 'col'}, 'Key id'),
        h('th', {scope: 'col'}, 'Created'), h('th', {scope: 'col'}, 'State'), h('th', {scope: 'col'}, h('span', {class: 'sr-only'}, 'Actions')))),
      h('tbody', {}, sorted.map((key) => {
        const own = key.id === session().key_id;
        let action = null;
        if (!key.revoked_at) {
          action = h('button', {class: 'button button-small button-danger-ghost', type: 'button', 'data-testid': 'revoke-key', 'aria-label': `Revoke ${key.name || `key ${shortId(key.id)}`}`}, 'Revoke');
          action.addEventListener('click', () => revoke(key, action));
        }
        return h('tr', {class: key.revoked_at ? 'revoked' : null, 'data-testid': 'key-row', 'data-key-id': key.id},
          h('td', {class: 'cell-name'}, key.name || h('span', {class: 'muted'}, 'unnamed'), own ? h('span', {class: 'tag tag-you'}, 'you') : null),
          h('td', {'data-label': 'Role'}, h('span', {class: ['role-badge', `role-${key.role}`]}, key.role)),
          h('td', {class: 'mono', title: key.id, 'data-label': 'Key id'}, shortId(key.id)),
          h('td', {'data-label': 'Created'}, h('span', {title: exact(key.created_at)}, clock(key.created_at))),
          h('td', {'data-testid': 'key-state', 'data-label': 'State'}, key.revoked_at
            ? h('span', {class: 'muted'}, 'revoked ', timeAgo(key.revoked_at))
            : h('span', {class: 'state-active'}, 'active')),
          h('td', {class: 'actions'}, action));
      })))));
  }

  async function load() {
    try {
      const keys = await get(ws('/keys'));
      if (!stopped) render(keys);
    } catch (error) {
      if (!stopped) replace(listBox, errorBox(error, {retry: load}));
    }
  }

  main.append(h('div', {class: 'page'},
    h('div', {class: 'page-head'}, h('div', {},
      h('h1', {class: 'page-title', tabindex: '-1'}, 'API keys'),
      h('p', {class: 'page-subtitle'}, 'Keys of workspace ', h('strong', {}, session().workspace.slug), '. Each has one role.'))),
    form, issued, h('h2', {class: 'section-title'}, 'Keys'), listBox));
  load();
  return () => { stopped = true; };
}
