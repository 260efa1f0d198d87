// The workspace picker: an instance admin key belongs to no workspace, so after signing in
// (and whenever it switches) it chooses the one every view then works in.

import {h, icon} from '../dom.js';
import {errorBox} from '../ui.js';

const FILTER_FROM = 8; // a filter box once the list is longer than a glance

export function mountWorkspacePicker(main, {workspaces = [], current = null, error = null, onPicked, onRetry, onSignOut}) {
  const signOut = h('button', {class: 'button button-ghost', type: 'button', 'data-testid': 'sign-out'},
    icon('out'), h('span', {}, 'Sign out'));
  signOut.addEventListener('click', () => onSignOut(signOut));
  const title = h('h1', {id: 'picker-title', class: 'signin-title', tabindex: '-1'}, 'Choose a workspace');
  const card = h('section', {class: 'signin card picker', 'aria-labelledby': 'picker-title', 'data-testid': 'workspace-picker'},
    h('div', {class: 'signin-brand'}, icon('logo', 'brand-logo brand-logo-large'), h('span', {}, 'Conveyor')),
    title);

  if (error) {
    card.append(errorBox(error, {retry: onRetry}), h('div', {class: 'picker-actions'}, signOut));
    main.append(card);
    return () => {};
  }

  card.append(h('p', {class: 'help picker-help'},
    'You signed in with an instance admin key: it may act in every workspace. ',
    'Choose the one to work in; the workspace\'s name in the header switches to another.'));
  const list = h('ul', {class: 'picker-list', 'aria-labelledby': 'picker-title'});
  const buttons = workspaces.map((workspace) => {
    const here = workspace.slug === current;
    const button = h('button', {
      class: ['button', 'picker-item', here ? 'picker-current' : null], type: 'button',
      'data-testid': 'pick-workspace', 'data-slug': workspace.slug, 'aria-current': here ? 'true' : null,
    }, h('span', {class: 'picker-name'}, workspace.slug), here ? h('span', {class: 'tag'}, 'current') : null);
    button.addEventListener('click', () => onPicked(workspace));
    list.append(h('li', {}, button));
    return button;
  });
  if (!workspaces.length) {
    card.append(h('p', {class: 'alert alert-info', 'data-testid': 'no-workspaces'},
      'There is no workspace yet. Create one with ', h('code', {}, 'conveyor workspace create NAME'), '.'));
  } else if (workspaces.length > FILTER_FROM) {
    const filter = h('input', {id: 'picker-filter', class: 'input input-wide', type: 'search', autocomplete: 'off', placeholder: 'Filter by name'});
    filter.addEventListener('input', () => {
      const wanted = filter.value.trim().toLowerCase();
      for (const button of buttons) button.parentElement.hidden = !button.dataset.slug.includes(wanted);
    });
    card.append(h('label', {class: 'label', for: 'picker-filter'}, 'Workspaces'), filter);
  }
  card.append(list, h('div', {class: 'picker-actions'}, signOut));
  main.append(card);
  (buttons.find((button) => button.classList.contains('picker-current')) || buttons[0] || title).focus();
  return () => {};
}
