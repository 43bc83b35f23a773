// The console's shell: reads /console/config.json, signs in (unless
// authentication is off), learns the user's tenants from /admin/whoami, and
// renders the view named by the address: #/{tenant}/{view}?{parameters}.
// Views are listed in views/index.js; see docs/console.md.

import { createApi, ApiError } from './api.js';
import * as auth from './auth.js';
import { h, replace, errorBox } from './dom.js';
import { views } from './views/index.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const tenantSelect = document.getElementById('tenant');
const signOutButton = document.getElementById('sign-out');

let config = null;
let me = null;
let renderSerial = 0;

const api = createApi({ token: auth.accessToken, onUnauthorized: auth.signOut });

/** The address of a view. */
export function href(tenant, view, params) {
  const query = params && [...new URLSearchParams(params)].length ? `?${new URLSearchParams(params)}` : '';
  return `#/${encodeURIComponent(tenant)}/${view}${query}`;
}

function parseHash() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [tenant = '', view = ''] = path.split('/');
  return { tenant: decodeURIComponent(tenant), view, params: new URLSearchParams(query) };
}

function showSignIn(message) {
  document.getElementById('tenant-picker').hidden = true;
  signOutButton.hidden = true;
  document.getElementById('who').textContent = '';
  nav.replaceChildren();
  const button = h('button', { type: 'button', id: 'sign-in', onclick: () => auth.signIn(config).catch(showFatal) }, 'Sign in');
  replace(main,
    h('h1', {}, 'Sign in'),
    message ? h('p', { class: 'notice', role: 'status' }, message) : null,
    h('p', {}, 'Sign in with your organisation account. You will come back here afterwards.'),
    button);
  button.focus();
}

function showFatal(error) {
  replace(main, h('h1', {}, 'The console cannot start'), errorBox(error));
}

function renderNav(route) {
  nav.replaceChildren(...views.map((view) => h('li', {},
    h('a', {
      href: href(route.tenant, view.id),
      'aria-current': view.id === route.view ? 'page' : null,
    }, view.title))));
}

function renderTenants(route) {
  // Only the user's own tenants are offered; another one typed into the
  // address is refused by the server, and the view shows why.
  tenantSelect.replaceChildren(...me.tenants.map((t) => h('option', { value: t, selected: t === route.tenant }, t)));
  document.getElementById('tenant-picker').hidden = false;
}

async function render() {
  const route = parseHash();
  if (!route.tenant || !route.view) {
    location.replace(href(me.tenants[0] ?? 'default', 'overview'));
    return;
  }
  renderNav(route);
  renderTenants(route);
  renderSerial += 1;
  const serial = renderSerial;
  const view = views.find((v) => v.id === route.view);
  if (!view) {
    replace(main, h('h1', {}, 'Not found'), errorBox(new Error(`There is no view called ${route.view}.`)));
    return;
  }
  document.title = `${view.title} · ${route.tenant} · Baraza console`;
  // data-serial and data-state let tests (and screen-reader users, via
  // aria-busy) know when the view has finished loading.
  const body = h('div', {
    class: 'view', 'data-view': view.id, 'data-serial': serial, 'data-state': 'loading', 'aria-busy': 'true',
  });
  const settle = (state) => {
    body.dataset.state = state;
    body.removeAttribute('aria-busy');
  };
  replace(main, h('h1', {}, view.title, h('span', { class: 'muted' }, ` · ${route.tenant}`)), body);
  const ctx = {
    tenant: route.tenant,
    params: route.params,
    api,
    me,
    navigate: (params) => { location.hash = href(route.tenant, view.id, params); },
  };
  try {
    await view.render(body, ctx);
    settle('done');
  } catch (error) {
    if (serial !== renderSerial) return;
    if (error instanceof ApiError && error.status === 401 && config.auth === 'oidc') {
      showSignIn('Your session has ended. Sign in again.');
      return;
    }
    body.append(errorBox(error));
    settle('error');
  }
}

async function start() {
  const response = await fetch('config.json', { cache: 'no-store' });
  config = await response.json();
  if (config.auth === 'oidc') {
    if (!config.client_id) {
      throw new Error('Sign-in is not configured: set BARAZA_CONSOLE_CLIENT_ID to the console\'s public client at the OpenID provider.');
    }
    await auth.completeSignIn(config);
    if (!auth.accessToken()) {
      showSignIn();
      return;
    }
    signOutButton.hidden = false;
    signOutButton.onclick = () => { auth.signOut(); showSignIn('You are signed out of the console.'); };
  }
  me = await api.get('/admin/whoami');
  document.getElementById('who').textContent = me.authenticated
    ? `Signed in as ${me.subject}`
    : 'Authentication is off (loopback)';
  tenantSelect.onchange = () => {
    const route = parseHash();
    location.hash = href(tenantSelect.value, route.view || 'overview');
  };
  window.addEventListener('hashchange', () => {
    render().then(() => main.focus({ preventScroll: true }));
  });
  await render();
}

// The skip link moves focus without touching the address (which routes).
document.querySelector('.skip').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

start().catch(showFatal);
