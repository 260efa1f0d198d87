// One stream of every job event in the workspace, shared by the views that want it (the
// overview and the job list) and by the header's live indicator.

import {ws} from './api.js';
import {EventStream} from './sse.js';

const listeners = new Set();
const stateListeners = new Set();
let stream = null;
let state = 'closed';

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
    },
    onUnauthorized,
  }).start();
}

export function stopWorkspaceStream() {
  if (stream) stream.close();
  stream = null;
}

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
