// Pretty, colour-coded JSON built from text nodes and spans (never parsed as HTML).

import {h} from './dom.js';

const LARGE = 200_000;

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
  } else if (typeof value === 'number') {
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
