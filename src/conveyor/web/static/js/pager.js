// The pager under a list that pages by number (jobs, schedules): rows per page, where the
// page is in the list ("26–50 of 120 · page 2 of 5") and Previous / Next. The page and its
// size live in the view's URL (`?page=2&limit=50`), so a reload or a shared link shows the
// same page.

import {h, icon} from './dom.js';
import {count} from './format.js';

export const PAGE_SIZES = [25, 50, 100];

/** The page and rows per page a list's URL asks for: {page, limit}. */
export function readPaging(query) {
  const limit = Number(query.get('limit'));
  return {
    page: Math.max(1, Number(query.get('page')) || 1),
    limit: PAGE_SIZES.includes(limit) ? limit : PAGE_SIZES[0],
  };
}

/** Put `paging` in URL parameters, leaving out what is the default. */
export function writePaging(params, {page, limit}) {
  if (page > 1) params.set('page', String(page));
  if (limit !== PAGE_SIZES[0]) params.set('limit', String(limit));
}

/** A pager showing `limit` rows a page: `onPage(number)` when Previous or Next is pressed,
 * `onSize(limit)` when the rows per page change. `show(meta)` says where a page answered
 * with `meta` (a list's page meta) stands. */
export function pager({limit, onPage, onSize}) {
  const prev = h('button', {class: 'button', type: 'button', 'data-testid': 'page-prev'}, icon('chevronLeft'), h('span', {}, 'Previous'));
  const next = h('button', {class: 'button', type: 'button', 'data-testid': 'page-next'}, h('span', {}, 'Next'), icon('chevronRight'));
  const info = h('span', {class: 'pager-info', 'aria-live': 'polite'});
  const size = h('select', {id: 'page-size', class: 'input input-small'},
    PAGE_SIZES.map((value) => h('option', {value: String(value), selected: value === limit}, String(value))));
  let number = 1;
  prev.addEventListener('click', () => onPage(number - 1));
  next.addEventListener('click', () => onPage(number + 1));
  size.addEventListener('change', () => onSize(Number(size.value)));
  const element = h('nav', {class: 'pager', 'aria-label': 'Pages'},
    h('div', {class: 'pager-size'}, h('label', {for: 'page-size', class: 'muted'}, 'Rows per page'), size),
    info, h('div', {class: 'pager-buttons'}, prev, next));

  function show(meta) {
    const {total, limit: shown, total_pages: pages} = meta;
    number = meta.page;
    const about = meta.total_is_estimate ? 'about ' : '';
    const first = total ? (number - 1) * shown + 1 : 0;
    const last = Math.min(total, number * shown);
    info.textContent = total ? `${count(first)}–${count(last)} of ${about}${count(total)} · page ${count(number)} of ${about}${count(Math.max(1, pages))}` : 'No results';
    prev.disabled = number <= 1;
    next.disabled = number >= pages;
  }

  return {element, show};
}
