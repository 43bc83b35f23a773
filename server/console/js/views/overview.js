// Overview of a tenant: GET /admin/{tenant}/overview (tenant-admin or
// audit-read): resources per type, writes, requests and errors per hour
// over the last day, and each caller's last successful write.

import { h, table, formatInstant, formatNumber, append } from '../dom.js';
import { barChart, hourChart } from '../charts.js';
import { adminBase } from '../api.js';

function card(label, value) {
  return h('div', { class: 'card' }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label));
}

async function render(container, { tenant, api }) {
  const data = await api.get(`${adminBase(tenant)}/overview`);
  const totalResources = data.resources.reduce((sum, r) => sum + r.count, 0);
  const writes = data.hours.reduce((sum, hour) => sum + hour.writes, 0);
  append(container, 
    h('div', { class: 'cards' },
      card('resources', formatNumber(totalResources)),
      card('resource types', formatNumber(data.resources.length)),
      card('writes, last 24 h', formatNumber(writes)),
      card('requests, last 24 h', formatNumber(data.requests)),
      card('error rate, last 24 h', `${(data.errorRate * 100).toFixed(1)} %`)),
    h('div', { class: 'grid2' },
      h('figure', {},
        h('figcaption', {}, 'Resources by type'),
        barChart(data.resources.map((r) => ({ label: r.type, value: r.count })), { title: 'Resources by type' })),
      h('figure', {},
        h('figcaption', {}, 'Writes per hour'),
        hourChart(data.hours, { title: 'Resource versions written per hour', series: [{ key: 'writes', label: 'Writes' }] })),
      h('figure', {},
        h('figcaption', {}, 'Requests and errors per hour ',
          h('span', { class: 'muted' }, '(green: requests, red: refused or failed)')),
        hourChart(data.hours, {
          title: 'Requests and errors per hour',
          series: [{ key: 'requests', label: 'Requests' }, { key: 'errors', label: 'Errors', className: 'err' }],
        }))),
    h('h2', {}, 'Last successful write per integrator or user'),
    data.lastSuccessfulWrites.length
      ? table([
        { label: 'Client or user', value: (r) => r.agent },
        { label: 'Last successful write', value: (r) => formatInstant(r.at) },
      ], data.lastSuccessfulWrites, 'Last successful write per client or user')
      : h('p', { class: 'muted' }, 'No successful writes in the last 30 days.'),
    h('p', { class: 'muted' }, `Generated ${formatInstant(data.generated)}.`));
}

export default { id: 'overview', title: 'Overview', render };
