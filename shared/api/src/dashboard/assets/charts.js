// Line charts as inline SVG: a few series over the same days, gridlines, labelled axes, a
// tooltip per point, and the figures as a table for screen readers. Series differ by dash and
// marker shape as well as colour.
import { h } from './common.js';

const WIDTH = 640;
const HEIGHT = 240;
const PAD = { left: 64, right: 16, top: 14, bottom: 34 };

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/**
 * `labels`: the x values (days); `series`: [{name, values (null for no data), colour,
 * dashed, shape}]; `format`: y value → text; `max`: fixed top of the y axis.
 */
export function lineChart({ title, labels, series, format = String, max, steps }) {
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const highest = Math.max(0, ...values);
  const top = max ?? (steps ? (steps.find((step) => step >= highest) ?? niceMax(highest)) : niceMax(highest));
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const x = (index) => PAD.left + (labels.length <= 1 ? plotWidth / 2 : (index * plotWidth) / (labels.length - 1));
  const y = (value) => PAD.top + plotHeight - (Math.min(value, top) / top) * plotHeight;

  const svg = h('svg:svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': title });
  svg.append(h('svg:title', {}, title));
  for (let step = 0; step <= 4; step++) {
    const value = (top * step) / 4;
    svg.append(
      h('svg:line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), stroke: '#d5d9de', 'stroke-width': 1 }),
      h('svg:text', { x: PAD.left - 6, y: y(value) + 4, 'text-anchor': 'end', 'font-size': 13, fill: '#4f5863' }, format(value)));
  }
  // About eight day labels; the last day always, in place of a tick too close before it.
  const every = Math.max(1, Math.ceil(labels.length / 8));
  const ticks = labels.map((_, index) => index).filter((index) => index % every === 0);
  const last = labels.length - 1;
  if (last > 0 && ticks[ticks.length - 1] !== last) {
    if (last - ticks[ticks.length - 1] <= every / 2) ticks.pop();
    ticks.push(last);
  }
  for (const index of ticks) {
    const anchor = index === last && last > 0 ? 'end' : 'middle';
    svg.append(h('svg:text', { x: x(index) + (anchor === 'end' ? 4 : 0), y: HEIGHT - PAD.bottom + 18, 'text-anchor': anchor, 'font-size': 13, fill: '#4f5863' }, labels[index]));
  }
  for (const s of series) {
    let path = '';
    let pen = false;
    s.values.forEach((value, index) => {
      if (value === null || value === undefined) { pen = false; return; }
      path += `${pen ? 'L' : 'M'}${x(index).toFixed(1)},${y(value).toFixed(1)}`;
      pen = true;
    });
    if (path) {
      svg.append(h('svg:path', { d: path, fill: 'none', stroke: s.colour, 'stroke-width': 2.5, 'stroke-dasharray': s.dashed ? '6 4' : null, 'stroke-linejoin': 'round' }));
    }
    s.values.forEach((value, index) => {
      if (value === null || value === undefined) return;
      const tip = h('svg:title', {}, `${labels[index]} · ${s.name}: ${format(value)}`);
      const marker = s.shape === 'square'
        ? h('svg:rect', { x: x(index) - 4, y: y(value) - 4, width: 8, height: 8, fill: '#fff', stroke: s.colour, 'stroke-width': 2 }, tip)
        : h('svg:circle', { cx: x(index), cy: y(value), r: 4, fill: s.colour, stroke: '#fff', 'stroke-width': 1.5 }, tip);
      svg.append(marker);
    });
  }
  svg.append(h('svg:line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0), stroke: '#8a939d', 'stroke-width': 1 }));

  const legend = h('div', { class: 'legend', 'aria-hidden': 'true' }, series.map((s) => {
    const key = h('span', { class: s.dashed ? 'key dashed' : 'key' });
    key.style.borderTopColor = s.colour;
    return h('span', {}, key, s.name);
  }));
  const table = h('table', { class: 'visually-hidden' },
    h('caption', {}, title),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Day'), series.map((s) => h('th', { scope: 'col' }, s.name)))),
    h('tbody', {}, labels.map((label, index) => h('tr', {}, h('th', { scope: 'row' }, label),
      series.map((s) => h('td', {}, s.values[index] == null ? '—' : format(s.values[index])))))));
  return h('figure', { class: 'card chart' }, h('figcaption', {}, h('h2', {}, title)), svg, legend, table);
}
