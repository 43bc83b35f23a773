// MPI review queue (docs/mpi.md; needs mpi-review): the pairs the master
// patient index could not decide, one at a time side by side with the
// field-by-field comparison and the score; accept (a), reject (r) or
// defer (d). Below, a golden record with its linked sources, and merge
// and unmerge of source records.

import { h, table, field, append, replace, errorBox } from '../dom.js';
import { fhirBase } from '../api.js';

const STATUSES = ['pending', 'deferred', 'accepted', 'rejected'];

function parts(parameter) {
  const out = {};
  for (const p of parameter.part ?? []) {
    const value = p.resource ?? p.valueReference?.reference ?? p.valueDecimal ?? p.valueString
      ?? p.valueCode ?? p.valueInstant;
    if (p.name === 'field') (out.fields ??= []).push(parts(p));
    else out[p.name] = value;
  }
  return out;
}

const idOf = (reference) => String(reference ?? '').replace(/^Patient\//, '');

function nameOf(patient) {
  const name = patient?.name?.[0];
  if (!name) return '';
  return [...(name.given ?? []), name.family].filter(Boolean).join(' ');
}

/** The demographics shown side by side. */
const ROWS = [
  ['Name', nameOf],
  ['Birth date', (p) => p?.birthDate],
  ['Gender', (p) => p?.gender],
  ['Identifiers', (p) => (p?.identifier ?? []).map((i) => `${i.system ?? ''}|${i.value ?? ''}`).join(', ')],
  ['Phone', (p) => (p?.telecom ?? []).map((t) => t.value).join(', ')],
  ['Address', (p) => (p?.address ?? []).map((a) => [...(a.line ?? []), a.city, a.district, a.state].filter(Boolean).join(', ')).join('; ')],
];

function sideBySide(pair) {
  return table([
    { label: 'Field', value: (r) => r[0] },
    { label: `A: Patient/${idOf(pair.a)}`, value: (r) => r[1](pair.patientA) ?? '' },
    { label: `B: Patient/${idOf(pair.b)}`, value: (r) => r[1](pair.patientB) ?? '' },
  ], ROWS, 'The two records side by side');
}

function comparison(pair) {
  return table([
    { label: 'Compared field', value: (f) => f.name },
    { label: 'Agreement', value: (f) => f.level },
    { label: 'Weight', value: (f) => Number(f.weight ?? 0).toFixed(2), num: true },
    { label: 'Adjustment', value: (f) => f.adjustment ?? '' },
  ], pair.fields ?? [], 'Field-by-field comparison');
}

async function decide(api, tenant, pair, decision) {
  return api.post(`${fhirBase(tenant)}/Patient/$mpi-decide`, {
    resourceType: 'Parameters',
    parameter: [
      { name: 'a', valueReference: { reference: pair.a } },
      { name: 'b', valueReference: { reference: pair.b } },
      { name: 'decision', valueCode: decision },
    ],
  });
}

function queue(container, ctx, pairs, status) {
  const { api, tenant, navigate } = ctx;
  const selected = Math.min(Number(ctx.params.get('pair') ?? 0), Math.max(pairs.length - 1, 0));
  const pair = pairs[selected];
  const message = h('p', { id: 'review-message', role: 'status', class: 'muted' });
  if (!pair) {
    return h('p', { id: 'review-empty', class: 'muted' }, `No ${status} pairs.`);
  }
  const act = async (decision) => {
    try {
      await decide(api, tenant, pair, decision);
      message.textContent = `${decision}: ${pair.a} and ${pair.b}`;
      navigate({ status, pair: String(selected), decided: `${decision}-${Date.now()}` });
    } catch (error) {
      replace(message, errorBox(error));
    }
  };
  const onKey = (event) => {
    if (!container.isConnected) {
      document.removeEventListener('keydown', onKey);
      return;
    }
    if (event.target.closest?.('input, select, textarea') || event.ctrlKey || event.metaKey || event.altKey) return;
    const decision = { a: 'accept', r: 'reject', d: 'defer' }[event.key];
    if (decision && status !== 'accepted' && status !== 'rejected') {
      event.preventDefault();
      document.removeEventListener('keydown', onKey);
      act(decision);
    }
  };
  document.addEventListener('keydown', onKey);
  const decidable = status === 'pending' || status === 'deferred';
  return h('section', { 'aria-labelledby': 'pair-heading' },
    h('h2', { id: 'pair-heading' }, `Pair ${selected + 1} of ${pairs.length}: score ${Number(pair.score).toFixed(2)}`),
    h('p', {}, pair.reason ?? '', pair.decidedBy ? ` — decided by ${pair.decidedBy}` : ''),
    h('div', { class: 'grid2' }, sideBySide(pair), comparison(pair)),
    decidable ? h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'accept', onclick: () => act('accept') }, 'Accept: same person (a)'),
      h('button', { type: 'button', id: 'reject', onclick: () => act('reject') }, 'Reject: different people (r)'),
      h('button', { type: 'button', id: 'defer', onclick: () => act('defer') }, 'Defer (d)')) : null,
    h('div', { role: 'group', 'aria-label': 'Pairs', class: 'pairs' },
      pairs.map((p, i) => h('button', {
        type: 'button',
        class: i === selected ? 'current' : null,
        'aria-current': i === selected ? 'true' : null,
        onclick: () => navigate({ status, pair: String(i) }),
      }, `${idOf(p.a)} – ${idOf(p.b)} (${Number(p.score).toFixed(1)})`))),
    message);
}

async function goldenSection(ctx) {
  const { api, tenant, params, navigate } = ctx;
  const input = h('input', { name: 'patient', id: 'golden-patient', value: params.get('patient') ?? '', placeholder: 'Patient id' });
  const form = h('form', {
    class: 'row',
    onsubmit: (event) => { event.preventDefault(); navigate({ ...Object.fromEntries(params), patient: input.value.trim() }); },
  }, field('Patient (source or golden)', input), h('button', { type: 'submit' }, 'Show golden record'));
  const out = h('div', { id: 'golden' });
  const id = params.get('patient');
  if (id) {
    try {
      let patient = await api.fhir(tenant, `Patient/${encodeURIComponent(id)}`);
      const refer = (patient.link ?? []).find((l) => l.type === 'refer');
      if (refer) patient = await api.fhir(tenant, `Patient/${encodeURIComponent(idOf(refer.other.reference))}`);
      const sources = (patient.link ?? []).filter((l) => l.type === 'seealso').map((l) => idOf(l.other.reference));
      const records = await Promise.all(sources.map((s) => api.fhir(tenant, `Patient/${encodeURIComponent(s)}`)));
      append(out,
        h('h3', {}, `Golden record Patient/${patient.id}: ${nameOf(patient)}`),
        table([
          { label: 'Source record', value: (p) => `Patient/${p.id}` },
          { label: 'Name', value: nameOf },
          { label: 'Birth date', value: (p) => p.birthDate ?? '' },
          { label: 'Active', value: (p) => String(p.active ?? '') },
          { label: 'Links', value: (p) => (p.link ?? []).map((l) => `${l.type} ${l.other.reference}`).join(', ') },
        ], records, 'Source records linked to the golden record'));
    } catch (error) {
      append(out, errorBox(error));
    }
  }
  return h('section', { 'aria-labelledby': 'golden-heading' }, h('h2', { id: 'golden-heading' }, 'Golden record'), form, out);
}

function mergeSection(ctx) {
  const { api, tenant } = ctx;
  const source = h('input', { name: 'source', id: 'merge-source', placeholder: 'Patient id' });
  const target = h('input', { name: 'target', id: 'merge-target', placeholder: 'Patient id' });
  const result = h('div', { id: 'merge-result', role: 'status' });
  const call = async (operation, parameters) => {
    replace(result);
    try {
      const answer = await api.post(`${fhirBase(tenant)}/Patient/${operation}`, { resourceType: 'Parameters', parameter: parameters });
      const outcome = (answer.parameter ?? []).find((p) => p.name === 'outcome')?.resource;
      append(result, h('p', {}, outcome?.issue?.[0]?.diagnostics ?? `${operation} done`));
    } catch (error) {
      append(result, errorBox(error));
    }
  };
  const ref = (input) => ({ valueReference: { reference: `Patient/${input.value.trim()}` } });
  return h('section', { 'aria-labelledby': 'merge-heading' },
    h('h2', { id: 'merge-heading' }, 'Merge and unmerge'),
    h('div', { class: 'row' },
      field('Source (merged away)', source),
      field('Target (kept)', target),
      h('button', { type: 'button', id: 'merge', onclick: () => call('$merge', [{ name: 'source-patient', ...ref(source) }, { name: 'target-patient', ...ref(target) }]) }, 'Merge'),
      h('button', { type: 'button', id: 'unmerge', onclick: () => call('$unmerge', [{ name: 'source-patient', ...ref(source) }]) }, 'Unmerge source')),
    result);
}

async function render(container, ctx) {
  const { api, tenant, params, navigate } = ctx;
  const status = STATUSES.includes(params.get('status')) ? params.get('status') : 'pending';
  const select = h('select', { id: 'review-status', name: 'status', onchange: (e) => navigate({ status: e.target.value }) },
    STATUSES.map((s) => h('option', { value: s, selected: s === status }, s)));
  const page = await api.fhir(tenant, `Patient/$mpi-review?status=${status}&_count=50`);
  const pairs = (page.parameter ?? []).filter((p) => p.name === 'pair').map(parts);
  append(container,
    h('div', { class: 'row' }, field('Pairs', select)),
    queue(container, ctx, pairs, status),
    await goldenSection(ctx),
    mergeSection(ctx));
}

export default { id: 'review', title: 'MPI review', render };
