// Numbers, times and durations, the way people read them; and the job type's rule, which
// forms and filters check.

const integer = new Intl.NumberFormat(undefined, {maximumFractionDigits: 0});
// 24-hour clock times: compact and unambiguous in tables and logs.
const timeOfDay = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'});
const dateAndTime = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const dateOfAnotherYear = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const hourMinute = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', hourCycle: 'h23'});

export const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
export const STATUSES = ['PENDING', 'QUEUED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];
// A job type, as the server's rule has it (domain/job_types.py: JOB_TYPE_REGEX, and
// JOB_TYPE_RULE, which says it to API clients in its own words): forms and filters check
// it before they ask, and say it so.
export const JOB_TYPE = /^[a-z0-9_.:-]{1,100}$/;
export const JOB_TYPE_HINT = 'must be 1 to 100 characters of a-z, 0-9, _ . : -';

export function count(value) {
  return value === null || value === undefined ? '—' : integer.format(value);
}

export function parseTime(value) {
  if (!value) return null;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? null : time;
}

/** "12:04:31" today, "Nov 27, 12:04:31" another day of this year, "Nov 27, 2031, 12:04:31"
 * in another year. */
export function clock(value) {
  const time = parseTime(value);
  if (!time) return '—';
  const today = new Date();
  if (time.toDateString() === today.toDateString()) return timeOfDay.format(time);
  return time.getFullYear() === today.getFullYear() ? dateAndTime.format(time) : dateOfAnotherYear.format(time);
}

/** A queued job whose run_at is still ahead (created for later, or a retry waiting out its
 * backoff): no worker claims it before then. */
export function notDueYet(job, now = Date.now()) {
  const due = parseTime(job.run_at);
  return job.status === 'QUEUED' && due !== null && due.getTime() > now;
}

export function hhmm(value) {
  const time = parseTime(value);
  return time ? hourMinute.format(time) : '';
}

/** A full, unambiguous timestamp (for title attributes). */
export function exact(value) {
  const time = parseTime(value);
  return time ? time.toLocaleString(undefined, {timeZoneName: 'short'}) : '';
}

/** 0.4 s, 12 s, 3 min 20 s, 2 h 05 min, 3 d 4 h. */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, '0')} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${String(minutes % 60).padStart(2, '0')} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago"; "in 5 min" for the future. */
export function ago(value, now = Date.now()) {
  const time = parseTime(value);
  if (!time) return '—';
  const difference = Math.round((now - time.getTime()) / 1000);
  const seconds = Math.abs(difference);
  if (seconds < 2) return 'just now';
  const say = (text) => (difference < 0 ? `in ${text}` : `${text} ago`);
  if (seconds < 60) return say(`${seconds} s`);
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return say(`${minutes} min`);
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return say(`${hours} h`);
  return say(`${Math.floor(hours / 24)} d`);
}

export function between(start, end) {
  const from = parseTime(start);
  if (!from) return null;
  const to = parseTime(end) || new Date();
  return to.getTime() - from.getTime();
}

/** The short form of a job or key id: its last 8 hex digits. Ids are UUIDv7, whose first
 * digits are a timestamp shared by everything created in the same instant; the end is random. */
export function shortId(id) {
  return String(id || '').replace(/-/g, '').slice(-8);
}

export function plural(n, word, many = `${word}s`) {
  return `${count(n)} ${n === 1 ? word : many}`;
}

export function titleCase(status) {
  const text = String(status || '').toLowerCase();
  return text.charAt(0).toUpperCase() + text.slice(1);
}
