// Facility registry: Organizations and Locations of the tenant as one
// tree through partOf (a Location under its managing Organization when it
// has no parent Location), and the Locations with a position on a plain
// SVG map (equirectangular, fitted to the points; no tiles, no network).

import { h, s, field, append } from '../dom.js';

const MAX_PAGES = 10;

function key(resource) {
  return `${resource.resourceType}/${resource.id}`;
}

function parentOf(resource) {
  const parent = resource.partOf?.reference
    ?? (resource.resourceType === 'Location' ? resource.managingOrganization?.reference : undefined);
  return parent ? parent.split('/').slice(-2).join('/') : null;
}

function label(resource) {
  return resource.name ?? resource.alias?.[0] ?? key(resource);
}

function buildTree(resources) {
  const byKey = new Map(resources.map((r) => [key(r), { resource: r, children: [] }]));
  const roots = [];
  for (const node of byKey.values()) {
    const parent = parentOf(node.resource);
    if (parent && byKey.has(parent) && parent !== key(node.resource)) byKey.get(parent).children.push(node);
    else roots.push(node);
  }
  const sort = (nodes) => {
    nodes.sort((a, b) => label(a.resource).localeCompare(label(b.resource)));
    nodes.forEach((n) => sort(n.children));
    return nodes;
  };
  return sort(roots);
}

function treeItem(node, filter) {
  const r = node.resource;
  const text = [h('span', {}, label(r)), h('span', { class: 'kind' }, `${r.resourceType}${r.status === 'inactive' ? ', inactive' : ''}`)];
  const matches = (n) => !filter || label(n.resource).toLowerCase().includes(filter)
    || n.children.some(matches);
  if (!matches(node)) return null;
  if (!node.children.length) return h('li', {}, text);
  return h('li', {}, h('details', { open: true },
    h('summary', {}, text, h('span', { class: 'kind' }, ` (${node.children.length})`)),
    h('ul', {}, node.children.map((c) => treeItem(c, filter)))));
}

function map(locations) {
  const points = locations
    .filter((l) => Number.isFinite(l.position?.latitude) && Number.isFinite(l.position?.longitude))
    .map((l) => ({ name: label(l), lat: l.position.latitude, lon: l.position.longitude }));
  if (!points.length) return h('p', { class: 'muted' }, 'No facility has a position.');
  const width = 640;
  const height = 420;
  const pad = 30;
  const lons = points.map((p) => p.lon);
  const lats = points.map((p) => p.lat);
  const span = Math.max(Math.max(...lons) - Math.min(...lons), Math.max(...lats) - Math.min(...lats), 0.5);
  const midLon = (Math.max(...lons) + Math.min(...lons)) / 2;
  const midLat = (Math.max(...lats) + Math.min(...lats)) / 2;
  const scale = (Math.min(width, height) - 2 * pad) / span;
  const x = (lon) => width / 2 + (lon - midLon) * scale;
  const y = (lat) => height / 2 - (lat - midLat) * scale;
  const svg = s('svg', { class: 'map', viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': `Map of ${points.length} facilities` });
  const step = span > 10 ? 5 : span > 2 ? 1 : 0.25;
  for (let lon = Math.ceil((midLon - span) / step) * step; lon <= midLon + span; lon += step) {
    svg.append(s('line', { class: 'graticule', x1: x(lon), x2: x(lon), y1: 0, y2: height }));
  }
  for (let lat = Math.ceil((midLat - span) / step) * step; lat <= midLat + span; lat += step) {
    svg.append(s('line', { class: 'graticule', x1: 0, x2: width, y1: y(lat), y2: y(lat) }));
  }
  for (const p of points) {
    const title = `${p.name} (${p.lat.toFixed(4)}, ${p.lon.toFixed(4)})`;
    svg.append(s('a', { href: '#', tabindex: 0, 'aria-label': title, onclick: (e) => e.preventDefault() },
      s('circle', { cx: x(p.lon), cy: y(p.lat), r: 6 }, s('title', {}, title)),
      s('text', { x: x(p.lon) + 9, y: y(p.lat) + 4 }, p.name)));
  }
  return svg;
}

async function render(container, { tenant, params, api, navigate }) {
  const form = h('form', { class: 'query', role: 'search', 'aria-label': 'Filter facilities' },
    field('Name contains', h('input', { name: 'name', value: params.get('name') ?? '' })),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const name = new FormData(form).get('name');
    navigate(name ? { name } : {});
  });
  append(container, form);
  const [organizations, locations] = await Promise.all([
    api.searchAll(tenant, 'Organization?_count=500', MAX_PAGES),
    api.searchAll(tenant, 'Location?_count=500', MAX_PAGES),
  ]);
  const filter = (params.get('name') ?? '').toLowerCase();
  const tree = buildTree([...organizations, ...locations]);
  append(container, 
    h('p', { role: 'status' }, `${organizations.length} organizations, ${locations.length} locations`),
    h('div', { class: 'grid2' },
      h('section', { 'aria-labelledby': 'tree-heading' },
        h('h2', { id: 'tree-heading' }, 'Hierarchy'),
        tree.length ? h('ul', { class: 'tree', id: 'facility-tree' }, tree.map((n) => treeItem(n, filter))) : h('p', { class: 'muted' }, 'No facilities.')),
      h('section', { 'aria-labelledby': 'map-heading' },
        h('h2', { id: 'map-heading' }, 'Map'),
        map(locations.filter((l) => !filter || label(l).toLowerCase().includes(filter))))));
}

export default { id: 'facilities', title: 'Facilities', render };
