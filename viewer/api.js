// The page's only way to the data: the public routes of /genesys/1/cs, called with the person's
// own credentials and tenancy headers. The base is computed from the page's own URL, so the page
// works under any stage prefix (/Prod/viewer/ -> /Prod/genesys/1/cs/) and never calls another host.
import { shellQuote } from './auth.js';

export const BASE = new URL('../genesys/1/cs/', window.location.href);

export class ApiError extends Error {
  constructor(status, message, exception) {
    super(message);
    this.status = status;
    this.exception = exception;
  }

  /** The error in words for the page: the API's own message, and what it means for the person. */
  explain(role) {
    if (this.status === 0) return `The API could not be reached: ${this.message}`;
    if (this.status === 401) return `The API did not accept your credentials: ${this.message}. Sign in again.`;
    if (this.status === 403) {
      return `The API refused this (403 Forbidden): ${this.message}. ` +
        (role === 'Supervisor' ? 'A Supervisor may read journeys but not change them.' :
          'Your role or your grant does not allow it for this tenant and group; ask an administrator.');
    }
    if (this.status === 404) return `Not found: ${this.message}`;
    return `The API answered ${this.status} ${this.exception || ''}: ${this.message}`;
  }
}

// RFC 3986 encoding: what SigV4 canonicalises to, so the URL sent is the URL signed.
export function encode(value) {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function query(params) {
  const pairs = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    pairs.push(`${encode(key)}=${encode(value === true ? 'true' : value)}`);
  }
  return pairs.length ? `?${pairs.join('&')}` : '';
}

function nextLink(header) {
  if (!header) return null;
  for (const part of header.split(',')) {
    const match = part.match(/<([^>]*)>\s*;\s*rel="?next"?/);
    if (match) return new URL(match[1], window.location.href).toString();
  }
  return null;
}

export class Api {
  constructor(access, tenant = {}) {
    this.access = access;
    this.tenant = tenant; // {cc, group}
  }

  url(path, params = {}) {
    return new URL(path.replace(/^\//, '') + query(params), BASE).toString();
  }

  tenantHeaders() {
    const headers = {};
    if (this.tenant.cc) headers.ContactCenterId = this.tenant.cc;
    if (this.tenant.group) headers.GroupId = this.tenant.group;
    return headers;
  }

  /** One call: {data, next} (next: the Link rel="next" URL, or null), or ApiError. */
  async call(method, url, body) {
    const headers = { Accept: 'application/json', ...this.tenantHeaders() };
    const text = body === undefined ? undefined : JSON.stringify(body);
    if (text !== undefined) headers['Content-Type'] = 'application/json';
    const request = await this.access.authorise(method, url, headers, text);
    let response;
    try {
      response = await fetch(request.url, { method, headers: request.headers, body: text, credentials: 'omit', cache: 'no-store' });
    } catch (error) {
      throw new ApiError(0, error.message || String(error), 'NetworkError');
    }
    const raw = await response.text();
    let data = null;
    if (raw) {
      try { data = JSON.parse(raw); } catch { data = null; }
    }
    if (!response.ok) {
      const message = data && typeof data.message === 'string' ? data.message : raw.slice(0, 200) || response.statusText;
      throw new ApiError(response.status, message, data && data.exception);
    }
    return { data, next: nextLink(response.headers.get('Link')) };
  }

  get(path, params) { return this.call('GET', this.url(path, params)); }

  /** Every page of a list, following Link; `onPage(items)` sees each page as it comes. */
  async all(path, params, onPage) {
    const items = [];
    let url = this.url(path, params);
    while (url) {
      const page = await this.call('GET', url);
      items.push(...page.data);
      if (onPage) onPage(page.data);
      url = page.next;
    }
    return items;
  }

  /** The curl command that makes the same read, with the same headers (no secret in it). */
  curl(url) {
    const parts = ['curl -s', shellQuote(url)];
    for (const [key, value] of Object.entries(this.tenantHeaders())) parts.push(`-H ${shellQuote(`${key}: ${value}`)}`);
    parts.push(...this.access.curlOptions());
    return parts.join(' ');
  }
}
