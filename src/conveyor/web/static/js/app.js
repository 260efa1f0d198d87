// The dashboard: sign-in, the header, and a hash router (#/, #/jobs, #/jobs/<id>,
// #/schedules, #/schedules/<id>, #/limits, #/keys, #/settings) so the server needs no
// fallback routes.
// An instance admin key belongs to no workspace: after signing in it picks one
// (remembered for the tab), and can switch.

import {can, del, get, session, setSession} from './api.js';
import {h, icon, replace} from './dom.js';
import {onStreamState, startWorkspaceStream, stopWorkspaceStream} from './live.js';
import {liveIndicator, startTicker, toast} from './ui.js';
import {mountOverview} from './views/overview.js';
import {mountJobs} from './views/jobs.js';
import {mountJob} from './views/job.js';
import {mountKeys} from './views/keys.js';
import {mountSettings} from './views/settings.js';
import {mountSchedule, mountSchedules} from './views/schedules.js';
import {mountLimits} from './views/limits.js';
import {mountSignIn} from './views/signin.js';
import {mountWorkspacePicker} from './views/workspaces.js';

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
  {pattern: /^\/limits\/?$/, nav: 'limits', mount: mountLimits},
  {pattern: /^\/keys\/?$/, nav: 'keys', mount: mountKeys},
  {pattern: /^\/settings\/?$/, nav: 'settings', mount: mountSettings},
];
const WORKSPACE_KEY = 'conveyor.workspace'; // an instance admin's choice, for this tab

function rememberedWorkspace() {
  try {
    return sessionStorage.getItem(WORKSPACE_KEY);
  } catch {
    return null; // storage blocked: the picker asks again after a reload
  }
}

function rememberWorkspace(slug) {
  try {
    if (slug) sessionStorage.setItem(WORKSPACE_KEY, slug);
    else sessionStorage.removeItem(WORKSPACE_KEY);
  } catch {
    // not remembered; everything else works
  }
}

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
  if (!session() || !session().workspace) return;
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
    h('a', {href: '#/limits', 'data-nav': 'limits'}, 'Limits'),
    can('manage_keys') ? h('a', {href: '#/keys', 'data-nav': 'keys'}, 'API keys') : null,
    can('manage_settings') ? h('a', {href: '#/settings', 'data-nav': 'settings'}, 'Settings') : null);
  const signOutButton = h('button', {class: 'button button-ghost', type: 'button', 'data-testid': 'sign-out'},
    icon('out'), h('span', {}, 'Sign out'));
  signOutButton.addEventListener('click', () => signOut(signOutButton));
  const slug = current.workspace.slug;
  const parts = [h('span', {class: 'who-label'}, 'Workspace'), h('strong', {'data-testid': 'workspace'}, slug)];
  let who;
  if (current.instance) {
    // An instance key may act in every workspace: its name is the way to another.
    who = h('button', {class: 'who who-switch', type: 'button', 'data-testid': 'switch-workspace', title: 'Switch to another workspace'},
      ...parts, icon('chevronDown', 'icon-tiny'));
    who.addEventListener('click', () => chooseWorkspace(current, {switching: true}));
  } else {
    who = h('span', {class: 'who', title: `Workspace ${slug}`}, ...parts);
  }
  return h('header', {class: 'topbar'},
    h('a', {class: 'brand', href: '#/', 'aria-label': 'Conveyor overview'}, icon('logo', 'brand-logo'), h('span', {}, 'Conveyor')),
    nav,
    h('div', {class: 'topbar-right'},
      live,
      who,
      h('span', {
        class: ['role-badge', `role-${current.role}`], 'data-testid': 'role',
        title: current.instance ? 'An instance key: its role in every workspace' : 'The role of the API key you signed in with',
      }, current.instance ? [h('span', {class: 'role-scope'}, 'instance '), current.role] : current.role),
      signOutButton));
}

async function endSession() {
  try {
    await del('/v1/session');
  } catch {
    // signed out already, or the server is gone: the local sign-out is what matters
  }
  rememberWorkspace(null);
}

async function signOut(button) {
  if (button) button.disabled = true;
  await endSession();
  signedOut('You are signed out.');
}

/** An instance key's session: pick the workspace to work in (the one remembered for this
 * tab, if it still exists, unless switching). */
async function chooseWorkspace(value, {focus = true, switching = false} = {}) {
  teardown();
  stopWorkspaceStream();
  signingOut = false;
  const base = {...value, workspace: null};
  setSession(base);
  main = h('main', {id: 'main', class: 'main main-centered', tabindex: '-1'});
  replace(app, main);
  document.title = 'Choose a workspace · Conveyor';
  let workspaces;
  try {
    workspaces = (await get('/v1/workspaces')).data || [];
  } catch (error) {
    if (session() !== base) return; // signed out meanwhile
    if (error.status === 403) {
      await endSession();
      signedOut(`An instance ${value.role} key cannot open the dashboard: it only claims jobs and reports on them. Sign in with a workspace key or an instance admin key.`);
      return;
    }
    cleanup = mountWorkspacePicker(main, {error, onRetry: () => chooseWorkspace(value, {focus, switching}), onSignOut: signOut});
    return;
  }
  if (session() !== base) return;
  const remembered = rememberedWorkspace();
  const again = switching ? null : workspaces.find((workspace) => workspace.slug === remembered);
  if (again) {
    signedIn({...base, workspace: again}, {focus});
    return;
  }
  cleanup = mountWorkspacePicker(main, {
    workspaces,
    current: switching && value.workspace ? value.workspace.slug : null,
    onPicked: (workspace) => {
      rememberWorkspace(workspace.slug);
      signedIn({...base, workspace});
    },
    onSignOut: signOut,
  });
}

function signedIn(value, {focus = true} = {}) {
  if (value.instance && !value.workspace) {
    chooseWorkspace(value, {focus});
    return;
  }
  teardown();
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
