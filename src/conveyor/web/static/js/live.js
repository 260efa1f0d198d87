// The tab's one stream: every job event in the workspace, followed by the views that want
// it (the overview, the job list, the limits, and a job's page, which keeps its job's
// events), with its state in the header's live indicator.
//
// One per tab, and none while the tab is hidden: Chrome opens at most six HTTP/1.1
// connections to a host (the server speaks no HTTP/2), shared by every tab, and an open
// stream holds one, so tabs that each kept a stream would leave the next tab's requests
// waiting. A tab pauses its stream a little while after it is hidden (and opens none while
// hidden) and, shown again, resumes exactly after the last event it had; each time the
// stream opens, the views listening with onStreamOpen look again at what they show.

import {ws} from './api.js';
import {EventStream} from './sse.js';

// A glance at another tab keeps the stream; a tab left hidden gives its connection back.
const HIDDEN_PAUSE_MS = 3000;

const listeners = new Set();
const stateListeners = new Set();
const openListeners = new Set();
let stream = null;
let state = 'closed';
let pauseTimer = null;

export function startWorkspaceStream(onUnauthorized) {
  stopWorkspaceStream();
  stream = new EventStream(ws('/events/stream'), {
    onEvent(type, data) {
      if (type === 'stream.closed') {
        // the key behind the session was revoked
        stream.close();
        onUnauthorized();
        return;
      }
      if (!data || typeof data !== 'object' || !data.job_id) return;
      for (const listener of listeners) listener(type, data);
    },
    onState(next) {
      state = next;
      for (const listener of stateListeners) listener(next);
      if (next === 'open') for (const listener of openListeners) listener();
    },
    onUnauthorized,
  });
  if (document.visibilityState === 'hidden') stream.pause();
  else stream.start();
}

export function stopWorkspaceStream() {
  clearTimeout(pauseTimer);
  if (stream) stream.close();
  stream = null;
}

function followVisibility() {
  clearTimeout(pauseTimer);
  if (!stream) return;
  if (document.visibilityState === 'hidden') {
    const hidden = stream;
    pauseTimer = setTimeout(() => hidden.pause(), HIDDEN_PAUSE_MS);
  } else {
    stream.resume();
  }
}

document.addEventListener('visibilitychange', followVisibility);

/** Listen to workspace events; returns the function that stops listening. */
export function onWorkspaceEvent(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function onStreamState(listener) {
  stateListeners.add(listener);
  listener(state);
  return () => stateListeners.delete(listener);
}

/** Call `listener` each time the stream opens: at first, and again after a pause (a hidden
 * tab) or a break. Events may have been missed while it was not open (before it first
 * opened, or when the server no longer had them to resume from): a view that looks again
 * here shows them. Returns the function that stops listening. */
export function onStreamOpen(listener) {
  openListeners.add(listener);
  return () => openListeners.delete(listener);
}

/** The status a job event moves its job to, when it says (else undefined). */
export function statusAfter(type, payload) {
  switch (type) {
    case 'job.queued': case 'job.retrying': case 'job.released': return 'QUEUED';
    case 'job.started': return 'RUNNING';
    case 'job.completed': return 'COMPLETED';
    case 'job.failed': return 'FAILED';
    case 'job.cancelled': return 'CANCELLED';
    case 'job.lease_expired': return payload && payload.status ? payload.status : undefined;
    default: return undefined;
  }
}
