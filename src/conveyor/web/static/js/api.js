// The HTTP API, as the signed-in browser uses it: the HttpOnly session cookie authenticates,
// and every request that changes state carries the session's CSRF token. JSON goes both
// ways through json.js, which keeps every digit of large integers.

import {jsonText, parseJson} from './json.js';

let current = null;

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = (problem && (problem.detail || problem.title)) || `request failed (HTTP ${status})`;
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem || {};
    this.detail = detail;
  }
}

/** The signed-in session: {key_id, role, workspace: {id, slug}, instance, csrf_token} or null.
 * An instance key's session names no workspace of its own: the app sets the one chosen. */
export function session() {
  return current;
}

export function setSession(value) {
  current = value;
}

// A path segment `.` or `..` is resolved by the browser before a request is sent, as
// "this folder" or "the one above", and so are its escaped forms (`%2E`, `.%2e`…: the URL
// standard decodes them for this): no URL the browser sends can name such a thing.
const DOT_SEGMENTS = new Set(['.', '..']);

/** Whether `name` can be named in a request as one path segment (see DOT_SEGMENTS). */
export function addressable(name) {
  return !DOT_SEGMENTS.has(String(name));
}

/** `name` as one segment of an API path, percent-encoded whole (`customer/42` →
 * `customer%2F42`); a name that cannot be addressed is refused here, rather than sent as
 * a path that means another thing. */
export function segment(name) {
  if (!addressable(name)) throw new Error(`a browser cannot name “${name}” in a request`);
  return encodeURIComponent(String(name));
}

/** A path under the signed-in workspace: ws('/jobs') → /v1/workspaces/acme/jobs. */
export function ws(path) {
  if (!current) throw new Error('not signed in');
  return `/v1/workspaces/${segment(current.workspace.slug)}${path}`;
}

const SAFE = new Set(['GET', 'HEAD']);

/** Fetch JSON; problems (RFC 9457) become ApiError with the server's `detail`. A 401 on a
 * workspace route means the session is gone: the app is told so it can show the sign-in. */
export async function request(method, path, {body, query, signal} = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined || value === null || value === '') continue;
      for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  const headers = {Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (!SAFE.has(method) && current) headers['X-CSRF-Token'] = current.csrf_token;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : jsonText(body),
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    throw new ApiError(0, {detail: 'The server cannot be reached. Check that Conveyor is running.'});
  }
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await response.text().then(parseJson).catch(() => null) : null;
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !path.startsWith('/v1/session')) {
      window.dispatchEvent(new CustomEvent('conveyor:unauthorized', {detail: error.detail}));
    }
    throw error;
  }
  return data;
}

export const get = (path, options) => request('GET', path, options);
export const post = (path, body, options) => request('POST', path, {...options, body});
export const patch = (path, body, options) => request('PATCH', path, {...options, body});
export const put = (path, body, options) => request('PUT', path, {...options, body});
export const del = (path, options) => request('DELETE', path, options);

// -- what each role may do (mirrors the server; the server enforces it anyway) -------------

// 'release' (PENDING → QUEUED) is allowed to whoever may create jobs.
const ALL = ['read', 'create', 'release', 'cancel', 'retry', 'stream', 'claim', 'start', 'report', 'report_without_lease', 'manage_keys', 'manage_limits', 'manage_schedules', 'manage_settings'];
const PERMISSIONS = {
  client: ['read', 'create', 'release', 'cancel', 'retry', 'stream', 'manage_schedules'],
  worker: ['read', 'stream', 'claim', 'start', 'report', 'report_without_lease'],
  admin: ALL,
};
// Keys bound to no workspace: an instance worker claims and reports on the jobs it holds
// (with their lease), nothing else; an instance admin does everything, and alone sets a
// workspace's weight (its share of the workers every workspace shares).
const INSTANCE_PERMISSIONS = {worker: ['claim', 'report'], admin: [...ALL, 'set_weight']};

export function can(permission) {
  const table = current && current.instance ? INSTANCE_PERMISSIONS : PERMISSIONS;
  return Boolean(current && (table[current.role] || []).includes(permission));
}
