// The dashboard: sign-in, the header, and a hash router (#/, #/jobs, #/jobs/<id>,
// #/schedules, #/schedules/<id>, #/keys)
// so the server needs no fallback routes.

import {can, del, get, session, setSession} from './api.js';
import {h, icon, replace} from './dom.js';
import {onStreamState, startWorkspaceStream, stopWorkspaceStream} from './live.js';
import {liveIndicator, startTicker, toast} from './ui.js';
import {mountOverview} from './views/overview.js';
import {mountJobs} from './views/jobs.js';
import {mountJob} from './views/job.js';
import {mountKeys} from './views/keys.js';
import {mountSchedule, mountSchedules} from './views/schedules.js';
import {mountSignIn} from './views/signin.js';

const app = document.getElementById('app');
let main = null;
let nav = null;
let cleanup = null;
let signingOut = false;
let stopLive = null;

const ROUTES = [
  {pattern: /^\/?$/, nav: 'overview', mount: mountOverview},
  {pattern: /^\/jobs\/?$/, nav: 'jobs', mount: mountJobs},
  {pattern: /^\/jobs\/([0-9a-fA-F-]{36})\/?$/, nav: 'jobs', mount: mountJob},
  {pattern: /^\/schedules\/?$/, nav: 'schedules', mount: mountSchedules},
  {pattern: /^\/schedules\/([0-9a-fA-F-]{36})\/?$/, nav: 'schedules', mount: mountSchedule},
  {pattern: /^\/keys\/?$/, nav: 'keys', mount: mountKeys},
];

/** The hash as {path, query}: "#/jobs?status=FAILED" → {path: "/jobs", query: URLSearchParams}. */
export function currentRoute() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, search = ''] = hash.split('?');
  return {path, query: new URLSearchParams(search)};
}

function teardown() {
  if (cleanup) {
    try {
      cleanup();
    } catch (error) {
      setTimeout(() => { throw error; });
    }
  }
  cleanup = null;
}

function route({focus = true} = {}) {
  if (!session()) return;
  teardown();
  const {path, query} = currentRoute();
  const found = ROUTES.map((entry) => ({entry, match: entry.pattern.exec(path)})).find((item) => item.match);
  for (const link of nav.querySelectorAll('a[data-nav]')) {
    if (found && link.dataset.nav === found.entry.nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  main.replaceChildren();
  main.scrollTop = 0;
  window.scrollTo(0, 0);
  if (!found) {
    document.title = 'Not found · Conveyor';
    main.append(h('div', {class: 'page'},
      h('h1', {class: 'page-title', tabindex: '-1'}, 'Page not found'),
      h('p', {}, 'There is nothing at this address. ', h('a', {href: '#/'}, 'Go to the overview'), '.')));
  } else {
    cleanup = found.entry.mount(main, {params: found.match.slice(1), query});
  }
  if (focus) {
    const title = main.querySelector('h1');
    if (title) title.focus({preventScroll: true});
  }
}

function header() {
  const current = session();
  const live = liveIndicator();
  if (stopLive) stopLive();
  stopLive = onStreamState((state) => live.set(state));
  nav = h('nav', {class: 'nav', 'aria-label': 'Main'},
    h('a', {href: '#/', 'data-nav': 'overview'}, 'Overview'),
    h('a', {href: '#/jobs', 'data-nav': 'jobs'}, 'Jobs'),
    h('a', {href: '#/schedules', 'data-nav': 'schedules'}, 'Schedules'),
    can('manage_keys') ? h('a', {href: '#/keys', 'data-nav': 'keys'}, 'API keys') : null);
  const signOut = h('button', {class: 'button button-ghost', type: 'button', 'data-testid': 'sign-out'},
    icon('out'), h('span', {}, 'Sign out'));
  signOut.addEventListener('click', async () => {
    signOut.disabled = true;
    try {
      await del('/v1/session');
    } catch {
      // signed out already, or the server is gone: the local sign-out below is what matters
    }
    signedOut('You are signed out.');
  });
  return h('header', {class: 'topbar'},
    h('a', {class: 'brand', href: '#/', 'aria-label': 'Conveyor overview'}, icon('logo', 'brand-logo'), h('span', {}, 'Conveyor')),
    nav,
    h('div', {class: 'topbar-right'},
      live,
      h('span', {class: 'who', title: `Workspace ${current.workspace.slug}`},
        h('span', {class: 'who-label'}, 'Workspace'),
        h('strong', {'data-testid': 'workspace'}, current.workspace.slug)),
      h('span', {class: ['role-badge', `role-${current.role}`], 'data-testid': 'role', title: 'The role of the API key you signed in with'}, current.role),
      signOut));
}

function signedIn(value, {focus = true} = {}) {
  setSession(value);
  signingOut = false;
  main = h('main', {id: 'main', class: 'main', tabindex: '-1'});
  replace(app, header(), main);
  startWorkspaceStream(() => signedOut('Your session has ended (signed out, expired or the key was revoked). Sign in again.'));
  route({focus});
}

function signedOut(message) {
  if (signingOut) return;
  signingOut = true;
  teardown();
  stopWorkspaceStream();
  setSession(null);
  main = h('main', {id: 'main', class: 'main main-centered', tabindex: '-1'});
  replace(app, main);
  document.title = 'Sign in · Conveyor';
  cleanup = mountSignIn(main, {message, onSignedIn: (value) => signedIn(value)});
}

async function boot() {
  startTicker();
  window.addEventListener('hashchange', () => route());
  window.addEventListener('conveyor:unauthorized', () => {
    if (session()) signedOut('Your session has ended. Sign in again.');
  });
  document.querySelector('.skip-link').addEventListener('click', (event) => {
    event.preventDefault();
    const target = document.getElementById('main');
    if (target) target.focus();
  });
  let found = null;
  try {
    found = await get('/v1/session');
  } catch (error) {
    if (error.status && error.status !== 401) toast(error.detail, {kind: 'error'});
  }
  if (found) signedIn(found, {focus: false});
  else signedOut();
}

boot();
