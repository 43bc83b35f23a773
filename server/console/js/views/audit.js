// Audit viewer: AuditEvent search (docs/audit.md; needs audit-read) by
// patient, agent (user or client id) and time range, newest first, with
// a CSV export of what was found.

import { h, table, field, formatInstant, download, append } from '../dom.js';

const PAGE_LIMIT = 20;

function agentNames(event) {
  return (event.agent ?? [])
    .map((a) => a.who?.identifier?.value ?? a.who?.display)
    .filter(Boolean);
}

function entityNames(event) {
  return (event.entity ?? []).map((e) => e.what?.reference).filter(Boolean);
}

function interaction(event) {
  return (event.subtype ?? []).map((c) => c.code).join(' ');
}

const OUTCOMES = { 0: 'success', 4: 'minor failure', 8: 'serious failure', 12: 'major failure' };

function rowOf(event) {
  return {
    recorded: event.recorded,
    action: event.action,
    interaction: interaction(event),
    outcome: OUTCOMES[event.outcome] ?? event.outcome,
    status: event.outcomeDesc ?? '',
    agents: agentNames(event).join(' '),
    entities: entityNames(event).join(' '),
    address: (event.agent ?? []).map((a) => a.network?.address).filter(Boolean).join(' '),
  };
}

function csvCell(value) {
  const text = String(value ?? '');
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** RFC 4180 CSV of the rows. */
export function toCsv(rows) {
  const columns = ['recorded', 'action', 'interaction', 'outcome', 'status', 'agents', 'entities', 'address'];
  return [columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\r\n') + '\r\n';
}

function searchQuery(params) {
  const query = new URLSearchParams({ _count: '100' });
  if (params.get('patient')) {
    const patient = params.get('patient');
    query.set('patient', patient.includes('/') ? patient : `Patient/${patient}`);
  }
  if (params.get('agent')) query.set('agent', params.get('agent'));
  if (params.get('from')) query.append('date', `ge${params.get('from')}`);
  if (params.get('to')) query.append('date', `le${params.get('to')}`);
  return query;
}

async function render(container, { tenant, params, api, navigate }) {
  const input = (name, label, attrs = {}) => field(label, h('input', { name, value: params.get(name) ?? '', ...attrs }));
  const form = h('form', { class: 'query', role: 'search', 'aria-label': 'Audit search' },
    input('patient', 'Patient id', { placeholder: 'e.g. 123' }),
    input('agent', 'User or client id'),
    input('from', 'From (date or date-time)', { placeholder: '2026-01-31' }),
    input('to', 'To (date or date-time)'),
    h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const values = new FormData(form);
    navigate(Object.fromEntries([...values].filter(([, v]) => v !== '')));
  });
  append(container, h('p', { class: 'muted' },
    'Who accessed a patient, or what a user or client did, in a time range. Every search here is itself audited.'), form);

  const events = await api.searchAll(tenant, `AuditEvent?${searchQuery(params)}`, PAGE_LIMIT);
  const rows = events.map(rowOf);
  const exportButton = h('button', {
    type: 'button',
    class: 'secondary',
    id: 'audit-export',
    disabled: rows.length === 0,
    onclick: () => download(`audit-${tenant}.csv`, toCsv(rows), 'text/csv;charset=utf-8'),
  }, 'Export CSV');
  append(container, 
    h('p', { role: 'status' }, `${rows.length} event${rows.length === 1 ? '' : 's'} found `, exportButton),
    table([
      { label: 'Recorded', value: (r) => formatInstant(r.recorded) },
      { label: 'Action', value: (r) => r.action },
      { label: 'Interaction', value: (r) => r.interaction },
      { label: 'Outcome', value: (r) => `${r.outcome} (${r.status})` },
      { label: 'Who', value: (r) => r.agents },
      { label: 'What', value: (r) => r.entities },
    ], rows, 'Audit events'));
}

export default { id: 'audit', title: 'Audit', render };
