// The throughput chart: jobs finished per minute over the last hour, as stacked SVG bars.

import {h, s} from './dom.js';
import {count, hhmm} from './format.js';

const WIDTH = 760;
const HEIGHT = 250;
const MARGIN = {top: 12, right: 8, bottom: 24, left: 34};
const SERIES = [
  {key: 'completed', label: 'Completed'},
  {key: 'failed', label: 'Failed'},
  {key: 'cancelled', label: 'Cancelled'},
];

function niceMax(value) {
  if (value <= 4) return 4;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= value) return step * magnitude;
  }
  return 10 * magnitude;
}

/** The last 60 minutes, oldest first, each {minute: Date, completed, failed, cancelled}. */
export function lastHour(rows, now = Date.now()) {
  const byMinute = new Map();
  for (const row of rows || []) {
    const time = new Date(row.minute).getTime();
    if (!Number.isNaN(time)) byMinute.set(Math.floor(time / 60000), row);
  }
  const currentMinute = Math.floor(now / 60000);
  const minutes = [];
  for (let back = 59; back >= 0; back -= 1) {
    const minute = currentMinute - back;
    const row = byMinute.get(minute) || {};
    minutes.push({
      minute: new Date(minute * 60000),
      completed: row.completed || 0,
      failed: row.failed || 0,
      cancelled: row.cancelled || 0,
    });
  }
  return minutes;
}

export function throughputChart(rows) {
  const minutes = lastHour(rows);
  const totals = {completed: 0, failed: 0, cancelled: 0};
  let peak = 0;
  for (const minute of minutes) {
    for (const {key} of SERIES) totals[key] += minute[key];
    peak = Math.max(peak, minute.completed + minute.failed + minute.cancelled);
  }
  const top = niceMax(peak);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const slot = plotWidth / minutes.length;
  const barWidth = Math.max(2, slot - 2);
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;

  const grid = [0, top / 2, top].map((value) => s('g', {class: 'chart-grid'},
    s('line', {x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value)}),
    s('text', {x: MARGIN.left - 6, y: y(value) + 4, 'text-anchor': 'end', class: 'chart-label'}, count(value))));

  const bars = minutes.map((minute, index) => {
    const x = MARGIN.left + index * slot + (slot - barWidth) / 2;
    const total = minute.completed + minute.failed + minute.cancelled;
    const parts = [];
    let base = 0;
    for (const {key} of SERIES) {
      const value = minute[key];
      if (!value) continue;
      parts.push(s('rect', {
        class: `chart-bar chart-${key}`, x, width: barWidth, y: y(base + value), height: Math.max(1, y(base) - y(base + value)), rx: 1,
      }));
      base += value;
    }
    const label = `${hhmm(minute.minute)}: ${minute.completed} completed, ${minute.failed} failed, ${minute.cancelled} cancelled`;
    return s('g', {class: total ? 'chart-minute has-data' : 'chart-minute'},
      s('title', {}, label),
      s('rect', {class: 'chart-hit', x: MARGIN.left + index * slot, width: slot, y: MARGIN.top, height: plotHeight}),
      parts);
  });

  const ticks = [0, 15, 30, 45, 59].map((index) => s('text', {
    class: 'chart-label', x: MARGIN.left + index * slot + slot / 2, y: HEIGHT - 6,
    'text-anchor': index === 0 ? 'start' : index === 59 ? 'end' : 'middle',
  }, index === 59 ? 'now' : hhmm(minutes[index].minute)));

  const summary = `${totals.completed} completed, ${totals.failed} failed, ${totals.cancelled} cancelled in the last hour; busiest minute ${peak}.`;
  const svg = s('svg', {
    class: 'chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': `Jobs finished per minute. ${summary}`,
    'data-testid': 'throughput-chart',
  }, grid, bars, ticks);

  const legend = h('ul', {class: 'legend', 'aria-hidden': 'true'},
    SERIES.map(({key, label}) => h('li', {class: `legend-${key}`},
      h('span', {class: 'legend-swatch'}), `${label} `, h('strong', {}, count(totals[key])))));
  return {svg, legend, totals};
}
