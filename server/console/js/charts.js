// Charts drawn as inline SVG, with no library: each has a <title> and a
// <desc> for screen readers, and every bar a <title> tooltip. Scales are
// "nice" round numbers so that the gridlines read easily.

import { s, formatNumber } from './dom.js';

function niceMax(value) {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((f) => f * magnitude >= value) ?? 10;
  return step * magnitude;
}

function frame(width, height, title, description) {
  const id = `chart-${Math.random().toString(36).slice(2, 9)}`;
  return s('svg', {
    class: 'chart',
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-labelledby': `${id}-title ${id}-desc`,
  },
  s('title', { id: `${id}-title` }, title),
  s('desc', { id: `${id}-desc` }, description));
}

/** Horizontal bars, one per item ({label, value}), largest first. */
export function barChart(items, { title, unit = '' }) {
  const rows = items.slice(0, 15);
  const width = 520;
  const rowHeight = 22;
  const left = 140;
  const right = 60;
  const height = Math.max(rows.length, 1) * rowHeight + 24;
  const max = niceMax(Math.max(0, ...rows.map((r) => r.value)));
  const scale = (v) => (v / max) * (width - left - right);
  const description = rows.length
    ? rows.map((r) => `${r.label}: ${formatNumber(r.value)}${unit}`).join('; ')
    : 'No data.';
  const svg = frame(width, height, title, description);
  for (let tick = 0; tick <= 4; tick += 1) {
    const x = left + scale((max * tick) / 4);
    svg.append(s('line', { class: 'grid', x1: x, x2: x, y1: 0, y2: height - 20 }));
    svg.append(s('text', { x, y: height - 6, 'text-anchor': 'middle' }, formatNumber((max * tick) / 4)));
  }
  rows.forEach((row, i) => {
    const y = i * rowHeight + 4;
    svg.append(s('text', { x: left - 6, y: y + 14, 'text-anchor': 'end' }, row.label));
    svg.append(s('rect', { class: 'bar', x: left, y, width: Math.max(scale(row.value), 1), height: rowHeight - 6 },
      s('title', {}, `${row.label}: ${formatNumber(row.value)}${unit}`)));
    svg.append(s('text', { x: left + scale(row.value) + 4, y: y + 14 }, formatNumber(row.value)));
  });
  if (!rows.length) svg.append(s('text', { x: width / 2, y: 20, 'text-anchor': 'middle' }, 'No data yet'));
  return svg;
}

/**
 * Vertical bars per hour for `series` ([{key, label, className}]) of
 * `hours` ([{hour, ...}]), side by side.
 */
export function hourChart(hours, { title, series }) {
  const width = 560;
  const height = 200;
  const left = 40;
  const bottom = 28;
  const top = 10;
  const plotHeight = height - top - bottom;
  const slot = (width - left - 6) / Math.max(hours.length, 1);
  const max = niceMax(Math.max(0, ...hours.flatMap((h) => series.map((k) => h[k.key]))));
  const total = (key) => hours.reduce((sum, h) => sum + h[key], 0);
  const description = `${series.map((k) => `${k.label}: ${formatNumber(total(k.key))} in total`).join('; ')}, over ${hours.length} hours.`;
  const svg = frame(width, height, title, description);
  for (let tick = 0; tick <= 4; tick += 1) {
    const y = top + plotHeight - (plotHeight * tick) / 4;
    svg.append(s('line', { class: 'grid', x1: left, x2: width, y1: y, y2: y }));
    svg.append(s('text', { x: left - 4, y: y + 4, 'text-anchor': 'end' }, formatNumber((max * tick) / 4)));
  }
  svg.append(s('line', { class: 'axis', x1: left, x2: width, y1: top + plotHeight, y2: top + plotHeight }));
  const barWidth = Math.max((slot - 2) / series.length, 1);
  hours.forEach((hour, i) => {
    const x0 = left + i * slot + 1;
    const time = new Date(hour.hour);
    const label = `${String(time.getHours()).padStart(2, '0')}:00`;
    series.forEach((k, j) => {
      const value = hour[k.key];
      const barHeight = (value / max) * plotHeight;
      svg.append(s('rect', {
        class: `bar ${k.className ?? ''}`,
        x: x0 + j * barWidth,
        y: top + plotHeight - barHeight,
        width: barWidth,
        height: Math.max(barHeight, value > 0 ? 1 : 0),
      }, s('title', {}, `${label}: ${formatNumber(value)} ${k.label.toLowerCase()}`)));
    });
    if (i % 3 === 0) {
      svg.append(s('text', { x: x0 + slot / 2, y: height - 10, 'text-anchor': 'middle' }, label));
    }
  });
  return svg;
}
