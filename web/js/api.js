// fetch wrapper for the JSON API: sends the session's CSRF token on every state-changing
// request and turns `{ error: { code, message } }` responses into ApiError.

let csrfToken = null;

export function setCsrfToken(token) {
  csrfToken = token;
}

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

function loginUrl() {
  return `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
}

async function request(method, path, options = {}) {
  const url = options.params && String(options.params) ? `${path}?${options.params}` : path;
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken ?? '';
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.json);
  }
  if (options.raw !== undefined) {
    headers['Content-Type'] = 'application/octet-stream';
    init.body = options.raw;
  }
  if (options.text !== undefined) {
    headers['Content-Type'] = options.contentType;
    init.body = options.text;
  }

  const response = await fetch(url, init);
  const type = response.headers.get('content-type') ?? '';
  const body = type.includes('application/json') ? await response.json() : await response.text();
  if (response.ok) return body;

  const code = body?.error?.code ?? `http-${response.status}`;
  const message = body?.error?.message ?? `Request failed with HTTP ${response.status}`;
  if (response.status === 401 || code === 'password-change-required') {
    location.assign(loginUrl());
  }
  throw new ApiError(response.status, code, message, body);
}

export const api = {
  get: (path, params) => request('GET', path, { params }),
  post: (path, json, params) => request('POST', path, { json: json ?? {}, params }),
  patch: (path, json) => request('PATCH', path, { json }),
  delete: (path) => request('DELETE', path),
  upload: (path, bytes, params) => request('POST', path, { raw: bytes, params }),
  /** Sends text such as YAML with its media type, e.g. `application/yaml`. */
  putText: (path, text, contentType, params) => request('PUT', path, { text, contentType, params }),
};
