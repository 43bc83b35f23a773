// Ingest batches (docs/ingest.md): a tenant's batches with filters (an
// integrator sees its own, tenant admins all), one batch's counts and
// lifecycle, its per-record errors as an NDJSON download, and terminate.

import { h, table, field, formatInstant, formatNumber, download, append, replace, errorBox } from '../dom.js';

const STATUSES = ['', 'started', 'sendCompleted', 'processing', 'completed', 'failed', 'terminated'];
const LIFECYCLE = ['createdAt', 'sendCompletedAt', 'finishedAt', 'lastSuccessAt'];
const FINAL = ['completed', 'failed', 'terminated'];

function ingestBase(tenant) {
  return `/ingest/${encodeURIComponent(tenant)}/batches`;
}

function filters(ctx) {
  const { params, navigate } = ctx;
  const status = h('select', { id: 'batch-status', name: 'status' },
    STATUSES.map((s) => h('option', { value: s, selected: s === (params.get('status') ?? '') }, s || 'any')));
  const integrator = h('input', { id: 'batch-integrator', name: 'integrator', value: params.get('integrator') ?? '' });
  return h('form', {
    class: 'row',
    onsubmit: (event) => {
      event.preventDefault();
      const next = {};
      if (status.value) next.status = status.value;
      if (integrator.value.trim()) next.integrator = integrator.value.trim();
      navigate(next);
    },
  }, field('Status', status), field('Integrator', integrator), h('button', { type: 'submit' }, 'Filter'));
}

function detail(ctx, batch) {
  const { api, tenant, params, navigate } = ctx;
  const message = h('div', { id: 'batch-message', role: 'status' });
  const errors = async () => {
    replace(message);
    try {
      const text = await api.text(`${ingestBase(tenant)}/${encodeURIComponent(batch.id)}/errors`);
      download(`batch-${batch.id}-errors.ndjson`, text, 'application/fhir+ndjson');
      const lines = text.split('\n').filter(Boolean).length;
      append(message, h('p', {}, `Downloaded ${lines} error${lines === 1 ? '' : 's'}.`));
    } catch (error) {
      append(message, errorBox(error));
    }
  };
  const terminate = async () => {
    replace(message);
    try {
      await api.put(`${ingestBase(tenant)}/${encodeURIComponent(batch.id)}/action/terminate`);
      navigate({ ...Object.fromEntries(params), terminated: String(Date.now()) });
    } catch (error) {
      append(message, errorBox(error));
    }
  };
  const counts = batch.counts ?? {};
  return h('section', { 'aria-labelledby': 'batch-heading', id: 'batch-detail' },
    h('h2', { id: 'batch-heading' }, `Batch ${batch.name} (${batch.status})`),
    h('div', { class: 'cards' },
      ['received', 'created', 'updated', 'unchanged', 'failed', 'pending'].map((k) =>
        h('div', { class: 'card' }, h('div', { class: 'value' }, formatNumber(counts[k])), h('div', { class: 'label' }, k)))),
    h('dl', {},
      h('dt', {}, 'Data type'), h('dd', {}, batch.dataType),
      h('dt', {}, 'Integrator'), h('dd', {}, batch.integrator ?? ''),
      h('dt', {}, 'Expected records'), h('dd', {}, batch.expectedRecordCount ?? '—'),
      LIFECYCLE.map((k) => [h('dt', {}, k), h('dd', {}, formatInstant(batch[k]) || '—')]),
      batch.failureMessage ? [h('dt', {}, 'Failure'), h('dd', {}, batch.failureMessage)] : null),
    h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'batch-errors', onclick: errors, disabled: !counts.failed }, 'Download errors (NDJSON)'),
      h('button', { type: 'button', id: 'batch-terminate', onclick: terminate, disabled: FINAL.includes(batch.status) }, 'Terminate')),
    message);
}

async function render(container, ctx) {
  const { api, tenant, params, navigate } = ctx;
  const query = new URLSearchParams({ _count: '200' });
  for (const name of ['status', 'integrator']) {
    if (params.get(name)) query.set(name, params.get(name));
  }
  const { batches } = await api.get(`${ingestBase(tenant)}?${query}`);
  const selected = batches.find((b) => b.id === params.get('batch'));
  append(container,
    filters(ctx),
    batches.length
      ? table([
        { label: 'Batch', value: (b) => h('a', { href: '#', onclick: (e) => { e.preventDefault(); navigate({ ...Object.fromEntries(params), batch: b.id }); } }, b.name) },
        { label: 'Status', value: (b) => b.status },
        { label: 'Type', value: (b) => b.dataType },
        { label: 'Integrator', value: (b) => b.integrator ?? '' },
        { label: 'Received', value: (b) => formatNumber(b.counts?.received), num: true },
        { label: 'Failed', value: (b) => formatNumber(b.counts?.failed), num: true },
        { label: 'Created', value: (b) => formatInstant(b.createdAt) },
      ], batches, 'Ingest batches')
      : h('p', { class: 'muted', id: 'batches-empty' }, 'No batches match.'),
    selected ? detail(ctx, selected) : null);
}

export default { id: 'batches', title: 'Batches', render };
