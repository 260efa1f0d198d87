// Building DOM nodes without ever parsing HTML: every string becomes a text node, so text
// from the API (payloads, outputs, errors, names) can never turn into markup.

const SVG_NS = 'http://www.w3.org/2000/svg';
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'open', 'indeterminate']);

function apply(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') {
      node.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    } else if (key === 'text') {
      node.textContent = String(value);
    } else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'style') {
      throw new Error('inline style attributes are not allowed (CSP): use classes or setProperty');
    } else if (PROPERTIES.has(key)) {
      node[key] = value;
    } else {
      node.setAttribute(key, value === true ? '' : String(value));
    }
  }
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** An HTML element: h('a', {href: '#/jobs', class: 'link'}, 'Jobs'). */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  apply(node, props);
  append(node, children);
  return node;
}

/** An SVG element, same calling convention as h(). */
export function s(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  apply(node, props);
  append(node, children);
  return node;
}

/** Replace all children of `node`. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** Set a CSS custom property (allowed under a strict CSP, unlike style="…"). */
export function setVar(node, name, value) {
  node.style.setProperty(name, value);
  return node;
}

// -- icons (inline SVG built with createElementNS) -----------------------------------------

const ICONS = {
  logo: [['rect', {x: 3, y: 5, width: 7, height: 5, rx: 1.2}], ['rect', {x: 9, y: 12, width: 7, height: 5, rx: 1.2}],
    ['rect', {x: 15, y: 5, width: 7, height: 5, rx: 1.2}], ['path', {d: 'M2 21h21'}]],
  copy: [['rect', {x: 8, y: 8, width: 12, height: 12, rx: 2}], ['path', {d: 'M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2'}]],
  plus: [['path', {d: 'M12 5v14M5 12h14'}]],
  refresh: [['path', {d: 'M20 11a8 8 0 1 0-2.3 5.7'}], ['path', {d: 'M20 4v7h-7'}]],
  stop: [['rect', {x: 6, y: 6, width: 12, height: 12, rx: 2}]],
  play: [['path', {d: 'M7 5l12 7-12 7z'}]],
  retry: [['path', {d: 'M4 12a8 8 0 1 0 2.3-5.7'}], ['path', {d: 'M4 4v5h5'}]],
  key: [['circle', {cx: 8, cy: 15, r: 4}], ['path', {d: 'M11 12l9-9M17 6l3 3M15 8l2 2'}]],
  out: [['path', {d: 'M15 4h3a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-3'}], ['path', {d: 'M10 17l-5-5 5-5M5 12h11'}]],
  chevronLeft: [['path', {d: 'M15 18l-6-6 6-6'}]],
  chevronRight: [['path', {d: 'M9 18l6-6-6-6'}]],
  chevronDown: [['path', {d: 'M6 9l6 6 6-6'}]],
  pause: [['path', {d: 'M9 5v14M15 5v14'}]],
  edit: [['path', {d: 'M4 20h4L19 9l-4-4L4 16z'}], ['path', {d: 'M14 6l4 4'}]],
  x: [['path', {d: 'M6 6l12 12M18 6L6 18'}]],
  clock: [['circle', {cx: 12, cy: 12, r: 9}], ['path', {d: 'M12 7v5l3 2'}]],
};

export function icon(name, extraClass) {
  const parts = ICONS[name] || [];
  return s('svg', {
    class: ['icon', extraClass], viewBox: '0 0 24 24', width: 16, height: 16, fill: 'none',
    stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round',
    'aria-hidden': 'true', focusable: 'false',
  }, parts.map(([tag, attrs]) => s(tag, attrs)));
}
