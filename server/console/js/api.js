// The console's only way to the server: the public FHIR and admin APIs
// with the user's access token, exactly as any other client calls them.
// Every error becomes an ApiError whose message is the OperationOutcome's
// text, so that views show what the server said.

export class ApiError extends Error {
  constructor(status, message, outcome) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.outcome = outcome;
  }
}

/** The human text of an OperationOutcome (each issue's diagnostics or details). */
export function outcomeText(outcome) {
  const issues = outcome?.issue ?? [];
  const texts = issues
    .map((i) => i.diagnostics ?? i.details?.text ?? i.code)
    .filter(Boolean);
  return texts.join('\n');
}

export function fhirBase(tenant) {
  return tenant === 'default' ? '/fhir' : `/fhir/${encodeURIComponent(tenant)}`;
}

export function adminBase(tenant) {
  return tenant === 'default' ? '/admin' : `/admin/${encodeURIComponent(tenant)}`;
}

/**
 * A client bound to a token source. `onUnauthorized` runs on a 401 (the
 * token expired): the caller signs in again.
 */
export function createApi({ token, onUnauthorized }) {
  async function request(path, { method = 'GET', body, accept = 'application/fhir+json', raw = false } = {}) {
    const headers = { Accept: accept };
    const bearer = token();
    if (bearer) headers.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, `the server could not be reached (${e.message})`);
    }
    const text = await response.text();
    if (raw && response.ok) return text;
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!response.ok) {
      if (response.status === 401 && onUnauthorized) onUnauthorized();
      const message = json?.resourceType === 'OperationOutcome'
        ? outcomeText(json)
        : `the server answered ${response.statusText || 'with an error'} without an explanation`;
      throw new ApiError(response.status, message || `the server answered ${response.status}`, json);
    }
    return json;
  }

  return {
    get: (path) => request(path),
    put: (path, body) => request(path, { method: 'PUT', body }),
    post: (path, body) => request(path, { method: 'POST', body }),
    /** A text answer (an NDJSON download); errors are still OperationOutcomes. */
    text: (path, accept = 'application/fhir+ndjson') => request(path, { accept, raw: true }),
    delete: (path) => request(path, { method: 'DELETE' }),
    fhir: (tenant, path) => request(`${fhirBase(tenant)}/${path}`),
    admin: (tenant, path) => request(`${adminBase(tenant)}/${path}`),
    /** Every entry of a search, following `next` links up to `maxPages`. */
    async searchAll(tenant, path, maxPages = 20) {
      const resources = [];
      let bundle = await request(`${fhirBase(tenant)}/${path}`);
      for (let page = 1; bundle; page += 1) {
        for (const entry of bundle.entry ?? []) {
          if (entry.resource && entry.search?.mode !== 'outcome') resources.push(entry.resource);
        }
        const next = (bundle.link ?? []).find((l) => l.relation === 'next')?.url;
        if (!next || page >= maxPages) break;
        const url = new URL(next, location.href);
        bundle = await request(url.pathname + url.search);
      }
      return resources;
    },
  };
}
