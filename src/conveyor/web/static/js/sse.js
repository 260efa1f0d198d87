// A Server-Sent Events reader over fetch().
//
// Why not EventSource: Conveyor's events are *named* (`event: job.progress`, and workers add
// their own types such as `ai.tool_called`), and EventSource only delivers named events to a
// listener registered for that exact name, so an unknown type would be dropped silently. This
// reader hands every event to one callback, whatever its name; it also sees the HTTP status
// (a 401 means "sign in again", not "retry forever") and resumes with Last-Event-ID exactly
// as EventSource does. The session cookie authenticates it (same origin). Unlike
// EventSource, it can pause: the connection closes, the place in the stream is kept, and
// resume() goes on exactly after the last event.

import {parseJson} from './json.js';

const INITIAL_RETRY_MS = 3000;
const MAX_RETRY_MS = 30000;

export class EventStream {
  /**
   * @param {string} url
   * @param {{onEvent: (type: string, data: any, id: string) => void,
   *          onState?: (state: 'connecting'|'open'|'retrying'|'closed'|'error', detail?: string) => void,
   *          (closed: by close(), or paused)
   *          onUnauthorized?: () => void}} handlers
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.lastEventId = null;
    this.retryMs = INITIAL_RETRY_MS;
    this.failures = 0;
    this.closed = false;
    this.controller = null; // the current connection's: a connection that is no longer current ends quietly
    this.timer = null;
    this.paused = false;
    this.state = 'connecting';
  }

  start() {
    this.connect();
    return this;
  }

  close() {
    this.closed = true;
    this.disconnect();
    this.setState('closed');
  }

  /** Close the connection, keeping the place: resume() goes on after the last event. */
  pause() {
    if (this.closed || this.paused) return;
    this.paused = true;
    this.disconnect();
    this.setState('closed');
  }

  resume() {
    if (this.closed || !this.paused) return;
    this.paused = false;
    this.failures = 0;
    this.connect();
  }

  disconnect() {
    clearTimeout(this.timer);
    if (this.controller) this.controller.abort();
    this.controller = null;
  }

  setState(state, detail) {
    this.state = state;
    if (this.handlers.onState) this.handlers.onState(state, detail);
  }

  async connect() {
    if (this.closed || this.paused) return;
    this.setState('connecting');
    const controller = new AbortController();
    this.controller = controller;
    const current = () => this.controller === controller;
    const headers = {Accept: 'text/event-stream'};
    if (this.lastEventId !== null) headers['Last-Event-ID'] = this.lastEventId;
    let response;
    try {
      response = await fetch(this.url, {
        headers, credentials: 'same-origin', cache: 'no-store', signal: controller.signal,
      });
    } catch {
      if (current()) this.scheduleReconnect();
      return;
    }
    if (!current()) {
      response.body?.cancel().catch(() => {});
      return;
    }
    if (response.status === 410 && this.lastEventId !== null) {
      // The events after our place were deleted (retention): go on from now.
      response.body?.cancel().catch(() => {});
      this.lastEventId = null;
      this.connect();
      return;
    }
    // Refusals that retrying cannot fix (422: the resume point is not an event here).
    if ([401, 403, 404, 422].includes(response.status)) {
      this.closed = true;
      response.body?.cancel().catch(() => {});
      if (response.status === 401 && this.handlers.onUnauthorized) this.handlers.onUnauthorized();
      this.setState('error', `HTTP ${response.status}`);
      return;
    }
    if (!response.ok || !response.body) {
      response.body?.cancel().catch(() => {});
      this.scheduleReconnect();
      return;
    }
    this.failures = 0;
    this.setState('open');
    try {
      await this.read(response.body, controller.signal);
    } catch {
      // aborted by close() or pause(), or the connection broke: either way fall through
    }
    if (current()) this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.closed || this.paused) return;
    this.failures += 1;
    const backoff = Math.min(MAX_RETRY_MS, this.retryMs * 2 ** Math.max(0, this.failures - 1));
    this.setState('retrying');
    this.timer = setTimeout(() => this.connect(), this.failures <= 1 ? this.retryMs : backoff);
  }

  async read(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let type = '';
    let data = [];
    let id = null;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buffer += value;
      // Lines end with CRLF, LF or CR; keep a trailing partial line (and a lone CR that
      // may be the first half of a CRLF) for the next chunk.
      const lines = buffer.split(/\r\n|\n|\r(?!$)/);
      buffer = lines.pop();
      for (const line of lines) {
        if (signal.aborted) return;
        if (line === '') {
          if (id !== null) this.lastEventId = id;
          if (data.length) this.dispatch(type || 'message', data.join('\n'));
          type = '';
          data = [];
          id = null;
          continue;
        }
        if (line.startsWith(':')) continue; // a comment (": ping")
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let text = colon === -1 ? '' : line.slice(colon + 1);
        if (text.startsWith(' ')) text = text.slice(1);
        if (field === 'event') type = text;
        else if (field === 'data') data.push(text);
        else if (field === 'id' && !text.includes('\0')) id = text;
        else if (field === 'retry' && /^\d+$/.test(text)) this.retryMs = Number(text);
      }
    }
  }

  dispatch(type, raw) {
    let parsed;
    try {
      parsed = parseJson(raw);
    } catch {
      parsed = raw;
    }
    try {
      this.handlers.onEvent(type, parsed, this.lastEventId);
    } catch (error) {
      // a bug in a view must not kill the stream; report it where it can be seen
      setTimeout(() => { throw error; });
    }
  }
}
