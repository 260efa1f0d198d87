// JSON, exactly: parsed so that no integer loses a digit, sent as the user typed it, and
// shown pretty and colour-coded, built from text nodes and spans (never parsed as HTML).
//
// Why: JSON.parse turns every number into a double, so an id such as 9007199254740993
// (valid for the server up to 64 bits) would come back as 9007199254740992, and a payload
// typed into a form would reach the server changed.

import {h} from './dom.js';

const LARGE = 200_000;
const INTEGER_TEXT = /^-?\d+$/;

/** An integer beyond what a JavaScript number holds exactly (±2^53), kept as its digits.
 * It is shown and sent back (JSON.stringify) with every digit; arithmetic on it gets the
 * nearest number. */
export class LargeInteger {
  constructor(digits) {
    this.digits = digits;
    Object.freeze(this);
  }

  toJSON() {
    return JSON.rawJSON(this.digits);
  }

  toString() {
    return this.digits;
  }

  valueOf() {
    return Number(this.digits);
  }
}

// A browser without the reviver's source text (nor JSON.rawJSON to write it back) parses
// as JSON.parse does.
const KEEPS_SOURCE = typeof JSON.rawJSON === 'function';

/** JSON.parse, except that integers beyond ±2^53 become LargeIntegers with their digits. */
export function parseJson(text) {
  if (!KEEPS_SOURCE) return JSON.parse(text);
  return JSON.parse(text, (key, value, context) => (
    typeof value === 'number' && !Number.isSafeInteger(value) && context && INTEGER_TEXT.test(context.source)
      ? new LargeInteger(context.source)
      : value));
}

/** JSON text to be sent exactly as it is (a payload as the user typed it), inside a request
 * body that is otherwise serialised (see jsonText). */
export class JsonText {
  constructor(text) {
    JSON.parse(text); // throws a SyntaxError, with its position, for text that is not JSON
    this.text = text;
    Object.freeze(this);
  }
}

/** JSON.stringify for a request body, except that a JsonText anywhere in it goes in verbatim. */
export function jsonText(value) {
  if (value instanceof JsonText) return value.text;
  if (Array.isArray(value)) return `[${value.map((item) => jsonText(item) ?? 'null').join(',')}]`;
  if (value !== null && typeof value === 'object' && typeof value.toJSON !== 'function') {
    const members = [];
    for (const [key, item] of Object.entries(value)) {
      const text = jsonText(item);
      if (text !== undefined) members.push(`${JSON.stringify(key)}:${text}`); // as JSON.stringify skips it
    }
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

export function jsonView(value, {label, testid} = {}) {
  const pre = h('pre', {class: 'json', tabindex: '0', 'aria-label': label, 'data-testid': testid});
  if (value === undefined) {
    pre.append(h('span', {class: 'j-null'}, 'undefined'));
    return pre;
  }
  const text = JSON.stringify(value, null, 2);
  if (text === undefined || text.length > LARGE) {
    pre.textContent = text === undefined ? String(value) : text;
    return pre;
  }
  write(pre, value, 0);
  return pre;
}

function write(out, value, depth) {
  const pad = '  '.repeat(depth);
  const inner = '  '.repeat(depth + 1);
  if (value === null) {
    out.append(h('span', {class: 'j-null'}, 'null'));
  } else if (typeof value === 'string') {
    out.append(h('span', {class: 'j-string'}, JSON.stringify(value)));
  } else if (typeof value === 'number' || value instanceof LargeInteger) {
    out.append(h('span', {class: 'j-number'}, String(value)));
  } else if (typeof value === 'boolean') {
    out.append(h('span', {class: 'j-bool'}, String(value)));
  } else if (Array.isArray(value)) {
    if (!value.length) {
      out.append('[]');
      return;
    }
    out.append('[\n');
    value.forEach((item, index) => {
      out.append(inner);
      write(out, item, depth + 1);
      out.append(index < value.length - 1 ? ',\n' : '\n');
    });
    out.append(`${pad}]`);
  } else if (typeof value === 'object') {
    const entries = Object.entries(value);
    if (!entries.length) {
      out.append('{}');
      return;
    }
    out.append('{\n');
    entries.forEach(([key, item], index) => {
      out.append(inner, h('span', {class: 'j-key'}, JSON.stringify(key)), ': ');
      write(out, item, depth + 1);
      out.append(index < entries.length - 1 ? ',\n' : '\n');
    });
    out.append(`${pad}}`);
  } else {
    out.append(String(value));
  }
}

/** One line of JSON for tables, shortened. */
export function compact(value, max = 240) {
  if (value === undefined || value === null) return '';
  let text;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  if (text === '{}' || text === '[]') return '';
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
