// Small shared pieces: status badges, progress bars, relative times, toasts, dialogs.

import {h, icon, setVar} from './dom.js';
import {ago, between, duration, exact, titleCase} from './format.js';

export function statusBadge(status, extra = {}) {
  return h('span', {
    class: ['badge', `status-${String(status).toLowerCase()}`],
    'data-testid': extra.testid || 'status',
    'data-status': status,
  }, h('span', {class: 'badge-dot', 'aria-hidden': 'true'}), titleCase(status));
}

/** A progress bar (role=progressbar); `update(percent, status)` moves it. */
export function progressBar({size = 'large', label = 'Progress', testid = 'progress'} = {}) {
  const fill = h('div', {class: 'progress-fill'});
  const bar = h('div', {
    class: ['progress', `progress-${size}`], role: 'progressbar', 'aria-label': label,
    'aria-valuemin': '0', 'aria-valuemax': '100', 'data-testid': testid,
  }, fill);
  bar.update = (percent, status) => {
    const value = Math.max(0, Math.min(100, Number(percent) || 0));
    bar.setAttribute('aria-valuenow', String(value));
    bar.setAttribute('aria-valuetext', `${value}%`);
    setVar(fill, 'width', `${value}%`);
    bar.className = `progress progress-${size} status-${String(status || '').toLowerCase()}`;
  };
  return bar;
}

/** "12 s ago" that keeps itself current (see startTicker). */
export function timeAgo(value, {prefix = ''} = {}) {
  if (!value) return h('span', {class: 'muted'}, '—');
  return h('time', {datetime: value, title: exact(value), 'data-ago': value, 'data-prefix': prefix},
    prefix + ago(value));
}

/** How long from `start` to `end`; with no end, a running clock (see startTicker). */
export function elapsed(start, end) {
  if (!start) return h('span', {class: 'muted'}, '—');
  if (end) return h('span', {title: `${exact(start)} → ${exact(end)}`}, duration(between(start, end)));
  return h('span', {'data-elapsed': start, title: `since ${exact(start)}`}, duration(between(start, null)));
}

let ticker = null;
export function startTicker() {
  if (ticker) return;
  ticker = setInterval(() => {
    const now = Date.now();
    for (const node of document.querySelectorAll('[data-ago]')) {
      const text = (node.dataset.prefix || '') + ago(node.dataset.ago, now);
      if (node.textContent !== text) node.textContent = text;
    }
    for (const node of document.querySelectorAll('[data-elapsed]')) {
      const text = duration(now - new Date(node.dataset.elapsed).getTime());
      if (node.textContent !== text) node.textContent = text;
    }
    // Shown only until a time ("due in …"): gone when it comes.
    for (const node of document.querySelectorAll('[data-until]')) {
      if (new Date(node.dataset.until).getTime() <= now) node.remove();
    }
  }, 1000);
}

export function toast(message, {kind = 'info', action} = {}) {
  const box = document.getElementById('toasts');
  const close = h('button', {class: 'icon-button', type: 'button', 'aria-label': 'Dismiss'}, icon('x'));
  const item = h('div', {class: ['toast', `toast-${kind}`], 'data-testid': 'toast'},
    h('span', {class: 'toast-text'}, message), action || null, close);
  const remove = () => item.remove();
  close.addEventListener('click', remove);
  box.append(item);
  setTimeout(remove, kind === 'error' ? 9000 : 5000);
}

/** A modal confirmation (a native <dialog>: focus is trapped, Escape closes it). */
export function confirmDialog({title, body, confirm = 'Confirm', cancel = 'Back', danger = false}) {
  return new Promise((resolve) => {
    const yes = h('button', {class: ['button', danger ? 'button-danger' : 'button-primary'], type: 'button', value: 'yes'}, confirm);
    const no = h('button', {class: 'button', type: 'button', value: 'no'}, cancel);
    const dialog = h('dialog', {class: 'dialog', 'aria-labelledby': 'confirm-title', 'data-testid': 'confirm-dialog'},
      h('h2', {id: 'confirm-title', class: 'dialog-title'}, title),
      body ? h('p', {class: 'dialog-body'}, body) : null,
      h('div', {class: 'dialog-actions'}, no, yes));
    let answered = false;
    const finish = (answer) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    yes.addEventListener('click', () => finish(true));
    no.addEventListener('click', () => finish(false));
    dialog.addEventListener('close', () => finish(false));
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  });
}

/** A button that copies `text` to the clipboard (falls back to selecting it). */
export function copyButton(text, label = 'Copy', {testid} = {}) {
  const button = h('button', {class: 'button button-small', type: 'button', 'data-testid': testid},
    icon('copy'), h('span', {}, label));
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      toast('Copied to the clipboard');
    } catch {
      toast('Copy blocked by the browser: select the text and press Ctrl+C', {kind: 'warning'});
    }
  });
  return button;
}

export function errorBox(error, {retry} = {}) {
  return h('div', {class: 'alert alert-error', role: 'alert', 'data-testid': 'error'},
    h('strong', {}, error && error.status ? `Error ${error.status}: ` : 'Error: '),
    h('span', {}, (error && (error.detail || error.message)) || String(error)),
    retry ? h('button', {class: 'button button-small', type: 'button', onclick: retry}, 'Try again') : null);
}

export function emptyState(title, text, action) {
  return h('div', {class: 'empty'}, h('p', {class: 'empty-title'}, title),
    text ? h('p', {class: 'muted'}, text) : null, action || null);
}

export function liveIndicator() {
  const node = h('span', {class: 'live live-connecting', 'data-testid': 'live'},
    h('span', {class: 'live-dot', 'aria-hidden': 'true'}), h('span', {class: 'live-text'}, 'Connecting'));
  node.set = (state) => {
    const labels = {open: 'Live', connecting: 'Connecting', retrying: 'Reconnecting', closed: 'Paused',
      error: 'Offline', complete: 'Finished'};
    node.className = `live live-${state}`;
    node.lastChild.textContent = labels[state] || state;
    node.dataset.state = state;
  };
  return node;
}

/** Call `fn` at most once every `ms`; a call during the wait runs once when it ends. */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  const run = () => {
    timer = null;
    last = Date.now();
    fn();
  };
  const throttled = () => {
    if (timer) return;
    const wait = last + ms - Date.now();
    if (wait <= 0) run();
    else timer = setTimeout(run, wait);
  };
  throttled.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return throttled;
}

export function debounce(fn, ms) {
  let timer = null;
  const debounced = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  debounced.cancel = () => clearTimeout(timer);
  return debounced;
}
