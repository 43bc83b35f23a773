// Sign-in with the OpenID provider: the authorization-code flow with PKCE
// (RFC 7636, S256) for a public client, as OAuth 2.0 for browser-based
// apps recommends.
//
// Where things are kept:
// - the access token lives in memory only (a module variable): it is gone
//   when the tab is closed or reloaded, so a script injected later or a
//   shared computer finds nothing in storage. A reload signs in again,
//   usually without a prompt, through the provider's own session.
// - the PKCE verifier, the state and the view to return to are kept in
//   sessionStorage (this tab only) for the one redirect to the provider
//   and back, and removed as soon as the code is exchanged.
// Nothing is ever written to localStorage.

const PENDING_KEY = 'baraza.console.signin';

let session = null;

function base64url(bytes) {
  let text = '';
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function randomString(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

/** The console's own address, registered with the provider. */
export function redirectUri() {
  return `${location.origin}${location.pathname}`;
}

/** The current access token, or null. */
export function accessToken() {
  if (session && session.expiresAt > Date.now()) return session.accessToken;
  return null;
}

export function signOut() {
  session = null;
}

/** Sends the browser to the provider's login page. */
export async function signIn(config) {
  const verifier = randomString(48);
  const state = randomString(16);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, returnTo: location.hash }));
  const url = new URL(config.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state,
    code_challenge: base64url(digest),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/**
 * Finishes a sign-in when the provider has sent the browser back with a
 * code (or an error): exchanges the code for a token. Returns false when
 * this page load is not such a return.
 */
export async function completeSignIn(config) {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return false;
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? 'null');
  sessionStorage.removeItem(PENDING_KEY);
  // The code must not stay in the address bar or the history.
  history.replaceState(null, '', `${location.pathname}${pending?.returnTo ?? ''}`);
  if (params.has('error')) {
    throw new Error(`The provider refused the sign-in: ${params.get('error_description') ?? params.get('error')}`);
  }
  if (!pending || pending.state !== params.get('state')) {
    throw new Error('This sign-in answer does not belong to a sign-in started here (state mismatch). Sign in again.');
  }
  const response = await fetch(config.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri(),
      client_id: config.client_id,
      code_verifier: pending.verifier,
    }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) {
    throw new Error(`The provider refused the code: ${body.error_description ?? body.error ?? response.status}`);
  }
  session = {
    accessToken: body.access_token,
    // A little early, so that a request never leaves with a token about to expire.
    expiresAt: Date.now() + (Number(body.expires_in ?? 300) - 10) * 1000,
  };
  return true;
}
