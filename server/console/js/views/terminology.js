// Terminology browser (docs/terminology.md): find a code system, walk its
// hierarchy with $lookup (parent and child properties), list concepts
// through the implicit value set {system}?fhir_vs with a text filter, and
// $expand any value set.

import { h, table, field, append } from '../dom.js';
import { fhirBase } from '../api.js';

function parameter(parameters, name) {
  return (parameters?.parameter ?? []).filter((p) => p.name === name);
}

function properties(lookup) {
  return parameter(lookup, 'property').map((p) => {
    const parts = Object.fromEntries((p.part ?? []).map((part) => {
      const key = Object.keys(part).find((k) => k.startsWith('value'));
      const value = part[key];
      return [part.name, typeof value === 'object' ? value.code ?? JSON.stringify(value) : value];
    }));
    return { code: parts.code, value: parts.value };
  });
}

function codeSystemSection(tenant, params, api, navigate) {
  const section = h('section', { 'aria-labelledby': 'cs-heading' }, h('h2', { id: 'cs-heading' }, 'Code systems'));
  const form = h('form', { class: 'query', role: 'search', 'aria-label': 'Find a code system' },
    field('Name contains, or canonical URL', h('input', { name: 'cs', value: params.get('cs') ?? '', size: 40 })),
    h('button', { type: 'submit' }, 'Find'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate({ cs: new FormData(form).get('cs') });
  });
  append(section, form);
  return section;
}

async function listCodeSystems(section, tenant, params, api, navigate) {
  const term = params.get('cs');
  if (!term) return;
  const query = /^[a-z]+:/i.test(term)
    ? `url=${encodeURIComponent(term)}`
    : `name:contains=${encodeURIComponent(term)}`;
  const systems = await api.searchAll(tenant, `CodeSystem?${query}&_summary=true&_count=50`, 2);
  append(section, systems.length
    ? table([
      { label: 'Name', value: (cs) => cs.title ?? cs.name ?? cs.id },
      { label: 'URL', value: (cs) => cs.url },
      { label: 'Version', value: (cs) => cs.version ?? '' },
      { label: 'Concepts', value: (cs) => cs.count ?? '', num: true },
      { label: '', value: (cs) => h('button', { type: 'button', class: 'link', onclick: () => navigate({ system: cs.url }) }, `Browse ${cs.name ?? cs.id}`) },
    ], systems, 'Code systems found')
    : h('p', { class: 'muted' }, 'No code system of this tenant matches. Shipped code systems are found by their canonical URL.'));
}

async function browseSection(container, tenant, params, api, navigate) {
  const system = params.get('system') ?? '';
  const section = h('section', { 'aria-labelledby': 'browse-heading' }, h('h2', { id: 'browse-heading' }, 'Browse a code system'));
  const form = h('form', { class: 'query', 'aria-label': 'Browse a code system' },
    field('Code system URL', h('input', { name: 'system', value: system, size: 45, required: true })),
    field('Concept text', h('input', { name: 'filter', value: params.get('filter') ?? '' })),
    field('Code to look up', h('input', { name: 'code', value: params.get('code') ?? '' })),
    h('button', { type: 'submit' }, 'Browse'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== '')));
  });
  append(section, form);
  append(container, section);
  if (!system) return;
  const go = (code) => navigate({ system, code });
  if (params.get('code')) {
    const code = params.get('code');
    const lookup = await api.get(`${fhirBase(tenant)}/CodeSystem/$lookup?system=${encodeURIComponent(system)}&code=${encodeURIComponent(code)}`);
    const props = properties(lookup);
    const links = (name) => props.filter((p) => p.code === name).map((p) =>
      h('button', { type: 'button', class: 'secondary', onclick: () => go(p.value) }, p.value));
    const display = parameter(lookup, 'display')[0]?.valueString ?? '';
    const parents = links('parent');
    const children = links('child');
    append(section, h('div', { class: 'notice', id: 'concept' },
      h('p', {}, h('strong', {}, code), ` ${display}`),
      h('p', { class: 'concepts' }, 'Parents: ', parents.length ? parents : h('span', { class: 'muted' }, 'none (a root)')),
      h('p', { class: 'concepts' }, 'Children: ', children.length ? children : h('span', { class: 'muted' }, 'none')),
      table([
        { label: 'Property', value: (p) => p.code },
        { label: 'Value', value: (p) => String(p.value) },
      ], props.filter((p) => p.code !== 'parent' && p.code !== 'child'), 'Other properties')));
  }
  const filter = params.get('filter');
  const implicit = `${system}?fhir_vs`;
  const expansion = await api.get(`${fhirBase(tenant)}/ValueSet/$expand?url=${encodeURIComponent(implicit)}&count=50${filter ? `&filter=${encodeURIComponent(filter)}` : ''}`);
  const concepts = expansion.expansion?.contains ?? [];
  append(section, 
    h('h3', {}, `Concepts${filter ? ` matching “${filter}”` : ''} (${expansion.expansion?.total ?? concepts.length})`),
    h('ul', { class: 'concepts', 'aria-label': 'Concepts' }, concepts.map((c) =>
      h('li', {}, h('button', { type: 'button', class: 'link', onclick: () => go(c.code) }, c.code), ` ${c.display ?? ''}`))));
}

async function expandSection(container, tenant, params, api, navigate) {
  const section = h('section', { 'aria-labelledby': 'expand-heading' }, h('h2', { id: 'expand-heading' }, 'Expand a value set'));
  const form = h('form', { class: 'query', 'aria-label': 'Expand a value set' },
    field('Value set URL', h('input', { name: 'valueset', value: params.get('valueset') ?? '', size: 45, required: true })),
    field('Text filter', h('input', { name: 'vsfilter', value: params.get('vsfilter') ?? '' })),
    h('button', { type: 'submit' }, 'Expand'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(Object.fromEntries([...new FormData(form)].filter(([, v]) => v !== '')));
  });
  append(section, form);
  append(container, section);
  const url = params.get('valueset');
  if (!url) return;
  const filter = params.get('vsfilter');
  const expansion = await api.get(`${fhirBase(tenant)}/ValueSet/$expand?url=${encodeURIComponent(url)}&count=200${filter ? `&filter=${encodeURIComponent(filter)}` : ''}`);
  const contains = expansion.expansion?.contains ?? [];
  append(section, h('p', { role: 'status' }, `${expansion.expansion?.total ?? contains.length} codes`),
    table([
      { label: 'Code', value: (c) => c.code },
      { label: 'Display', value: (c) => c.display ?? '' },
      { label: 'System', value: (c) => c.system },
    ], contains, 'Expansion'));
}

async function render(container, { tenant, params, api, navigate }) {
  // The sections render one after the other, each form before its
  // results, so that an error (which the shell shows under the view)
  // follows the part that failed and the forms stay usable.
  const systems = codeSystemSection(tenant, params, api, navigate);
  append(container, systems);
  await listCodeSystems(systems, tenant, params, api, navigate);
  await browseSection(container, tenant, params, api, navigate);
  await expandSection(container, tenant, params, api, navigate);
}

export default { id: 'terminology', title: 'Terminology', render };
