// Administration: the user's tenants with their status (/admin/tenants;
// tenants are created, disabled and enabled with `baraza tenant` by the
// schema owner), the tenant's integrators and what their batches delivered
// (/admin/{tenant}/integrators, tenant-admin), the user's own rights here,
// the tenant's permission groups (/admin/{tenant}/groups, tenant-admin) and
// the union of the permissions of any set of groups, which is what a user
// holding those groups may do.

import { h, table, field, errorBox, append, formatInstant } from '../dom.js';
import { adminBase } from '../api.js';

function rightsTable(rights, caption) {
  const rows = Object.entries(rights.permissions ?? {}).map(([type, interactions]) => ({ type, interactions }));
  return h('div', {},
    table([
      { label: 'Resource type', value: (r) => r.type },
      { label: 'Interactions', value: (r) => r.interactions.join(', ') },
    ], rows, caption),
    h('p', {}, 'Purposes: ', (rights.purposes ?? []).length
      ? rights.purposes.map((p) => h('span', { class: 'pill' }, p))
      : h('span', { class: 'muted' }, 'none')));
}

function groupPermissions(group) {
  return Object.entries(group.permissions ?? {})
    .map(([type, interactions]) => `${type}: ${interactions.join(', ')}`)
    .join('; ');
}

/**
 * Reads the editor's permission lines, "Type: interaction, interaction",
 * into the admin API's form; the server checks the names.
 */
export function parsePermissions(text) {
  const permissions = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const [type, list = ''] = line.split(':');
    permissions[type.trim()] = list.split(',').map((i) => i.trim()).filter(Boolean);
  }
  return permissions;
}

function groupEditor(tenant, api, navigate, groups) {
  const form = h('form', { class: 'query', id: 'group-editor', 'aria-label': 'Create or replace a tenant group' },
    field('Name', h('input', { name: 'name', required: true })),
    field('Description', h('input', { name: 'description', size: 30 })),
    field('Permissions, one type per line (Type: create, read, update, delete, search)',
      h('textarea', { name: 'permissions', rows: 3, cols: 40, placeholder: 'Observation: create, read\nPatient: read, search' })),
    field('Purposes, comma-separated', h('input', { name: 'purposes', placeholder: 'audit-read' })),
    h('button', { type: 'submit' }, 'Save group'));
  const result = h('div', { role: 'status' });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const body = {
      description: String(data.get('description') ?? ''),
      permissions: parsePermissions(String(data.get('permissions') ?? '')),
      purposes: String(data.get('purposes') ?? '').split(',').map((p) => p.trim()).filter(Boolean),
    };
    result.replaceChildren();
    try {
      await api.put(`${adminBase(tenant)}/groups/${encodeURIComponent(String(data.get('name')))}`, body);
      navigate({ saved: String(data.get('name')) });
    } catch (error) {
      append(result, errorBox(error));
    }
  });
  const removable = groups.filter((g) => !g.system);
  return h('div', {},
    form,
    result,
    removable.length ? h('p', {}, 'Delete a tenant group: ', removable.map((g) => h('button', {
      type: 'button',
      class: 'secondary',
      'aria-label': `Delete group ${g.name}`,
      onclick: async () => {
        if (!window.confirm(`Delete the group ${g.name}? Users holding it lose its permissions at once.`)) return;
        try {
          await api.delete(`${adminBase(tenant)}/groups/${encodeURIComponent(g.name)}`);
          navigate({ deleted: g.name });
        } catch (error) {
          result.replaceChildren(errorBox(error));
        }
      },
    }, g.name))) : null);
}

function integratorsTable(integrators) {
  if (!integrators.length) return h('p', { class: 'muted' }, 'No integrator has sent a batch to this tenant.');
  return table([
    { label: 'Integrator', value: (i) => i.integrator ?? h('span', { class: 'muted' }, '(not an integrator)') },
    { label: 'Batches', num: true, value: (i) => String(i.batches) },
    { label: 'Open', num: true, value: (i) => String(i.openBatches) },
    { label: 'Failed batches', num: true, value: (i) => String(i.failedBatches) },
    { label: 'Records received', num: true, value: (i) => String(i.records.received) },
    { label: 'Created', num: true, value: (i) => String(i.records.created) },
    { label: 'Updated', num: true, value: (i) => String(i.records.updated) },
    { label: 'Failed records', num: true, value: (i) => String(i.records.failed) },
    { label: 'Last batch', value: (i) => formatInstant(i.lastBatchAt) },
    { label: 'Last success', value: (i) => formatInstant(i.lastSuccessAt) },
  ], integrators, 'Integrators');
}

async function render(container, { tenant, params, api, navigate }) {
  const { tenants } = await api.get('/admin/tenants');
  append(container,
    h('h2', {}, 'Tenants'),
    table([
      { label: 'Tenant', value: (t) => t.id },
      { label: 'Name', value: (t) => t.name },
      { label: 'Status', value: (t) => h('span', { class: 'pill' }, t.status) },
      { label: 'Created', value: (t) => formatInstant(t.createdAt) },
    ], tenants, 'Your tenants'),
    h('p', { class: 'muted' }, 'Tenants are created, disabled and enabled with the baraza tenant command, run as the database owner.'));

  append(container, h('h2', {}, 'Integrators'));
  try {
    const { integrators } = await api.get(`${adminBase(tenant)}/integrators`);
    append(container, integratorsTable(integrators));
  } catch (error) {
    append(container, errorBox(error));
  }

  const mine = await api.get(`${adminBase(tenant)}/me`);
  append(container, 
    h('h2', {}, 'Your rights in this tenant'),
    mine.groups ? h('p', {}, 'Your groups: ', mine.groups.map((g) => h('span', { class: 'pill' }, g))) : null,
    rightsTable(mine.rights, 'Your rights'));

  const selected = (params.get('groups') ?? '').split(',').map((g) => g.trim()).filter(Boolean);
  const { groups } = await api.get(`${adminBase(tenant)}/groups`);
  const boxes = groups.map((g) => h('label', { class: 'pill' },
    h('input', { type: 'checkbox', name: 'group', value: g.name, checked: selected.includes(g.name) }), ` ${g.name}`));
  const form = h('form', { class: 'query', 'aria-label': 'Permissions of a set of groups' },
    h('fieldset', {}, h('legend', {}, 'A user’s groups'), boxes),
    field('or type them, comma-separated', h('input', { name: 'typed', value: selected.filter((g) => !groups.some((x) => x.name === g)).join(', ') })),
    h('button', { type: 'submit' }, 'Show the union'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const names = [...data.getAll('group'), ...String(data.get('typed') ?? '').split(',')].map((g) => g.trim()).filter(Boolean);
    navigate(names.length ? { groups: names.join(',') } : {});
  });
  append(container, 
    h('h2', {}, 'Groups'),
    table([
      { label: 'Group', value: (g) => g.name },
      { label: 'Kind', value: (g) => (g.system ? 'system' : 'tenant') },
      { label: 'Description', value: (g) => g.description },
      { label: 'Permissions', value: groupPermissions },
      { label: 'Purposes', value: (g) => (g.purposes ?? []).join(', ') },
    ], groups, 'Permission groups'),
    params.get('saved') ? h('p', { class: 'notice', role: 'status' }, `Saved the group ${params.get('saved')}.`) : null,
    params.get('deleted') ? h('p', { class: 'notice', role: 'status' }, `Deleted the group ${params.get('deleted')}.`) : null,
    h('h2', {}, 'Create or change a tenant group'),
    groupEditor(tenant, api, navigate, groups),
    h('h2', {}, 'Effective permissions of a user'),
    h('p', { class: 'muted' }, 'Pick the groups a user holds at the identity provider: the server computes their union as it does when it checks a request.'),
    form);
  if (selected.length) {
    const query = new URLSearchParams(selected.map((g) => ['group', g]));
    const union = await api.get(`${adminBase(tenant)}/permissions?${query}`);
    append(container, h('div', { id: 'union' }, rightsTable(union.rights, `Union of ${selected.join(', ')}`)));
  }
}

export default { id: 'admin', title: 'Administration', render };
