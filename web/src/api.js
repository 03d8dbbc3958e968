// The API client: the stored API key and session, and requests that carry
// them. The session is POST /auth's answer, kept in localStorage with the
// time it expires (expiresAt, ms since the epoch, which the client adds);
// it is refreshed (POST /auth/refresh) when it expires within five
// minutes, once for all tabs: the server revokes the whole session when a
// superseded token comes back.

export const API_KEY = 'ovrlrd.apiKey';
export const SESSION = 'ovrlrd.session';

/** How long before its expiry a session is refreshed. */
const REFRESH_MARGIN = 5 * 60 * 1000;

/** ApiError is an answer other than 2xx, with the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
  }
}

function read(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function apiKey() {
  return read(API_KEY) || '';
}

export function session() {
  try {
    const s = JSON.parse(read(SESSION) || 'null');
    return s && typeof s.sessionToken === 'string' && s.sessionToken ? s : null;
  } catch {
    return null;
  }
}

export function signedIn() {
  return Boolean(apiKey() && session());
}

function saveSession(grant) {
  const s = { ...grant, expiresAt: Date.now() + Math.max(0, Number(grant.expiresIn) || 0) * 1000 };
  localStorage.setItem(SESSION, JSON.stringify(s));
  return s;
}

/** clear forgets the API key and the session. */
export function clear() {
  localStorage.removeItem(SESSION);
  localStorage.removeItem(API_KEY);
}

/** errorOf is the message of a failed answer: {"error": "..."} or its status. */
export async function errorOf(res) {
  let msg = '';
  try {
    const body = await res.json();
    if (body && typeof body.error === 'string') msg = body.error;
  } catch {
    // not JSON
  }
  return new ApiError(res.status, msg || `${res.status} ${res.statusText}`.trim());
}

async function json(res) {
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** onSignedOut is called when the session is gone (refused, or signed out in another tab). */
let signedOutHandler = () => {};
export function onSignedOut(fn) {
  signedOutHandler = fn;
}

/**
 * signIn takes an Apple identity token to a session, and keeps the key
 * and the session. nonce is the raw value whose hash the token carries:
 * the server requires it for the web's tokens (apple.js).
 */
export async function signIn(key, identityToken, nonce) {
  const res = await fetch('/auth', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': key },
    body: JSON.stringify(nonce ? { identityToken, nonce } : { identityToken }),
  });
  const grant = await json(res);
  localStorage.setItem(API_KEY, key);
  const s = saveSession(grant);
  scheduleRefresh();
  return s;
}

/**
 * localIdentityToken asks make dev's Apple stand-in for an identity token
 * carrying the hash of nonce, the raw value signIn then sends.
 */
export async function localIdentityToken(key, name, nonce) {
  const res = await fetch('/web/dev/identity-token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': key },
    body: JSON.stringify({ name, nonce }),
  });
  const body = await json(res);
  if (!body || typeof body.identityToken !== 'string') throw new ApiError(res.status, 'No identity token in the answer.');
  return body.identityToken;
}

/** webConfig is GET /web/config.json, or {} where there is none (deployed). */
export async function webConfig() {
  try {
    const res = await fetch('/web/config.json', { headers: { Accept: 'application/json' } });
    if (!res.ok) return {};
    return (await res.json()) || {};
  } catch {
    return {};
  }
}

let refreshing = null;

/**
 * refresh rotates the session unless another tab already did: under a
 * lock where the browser has one, the stored session is read again first.
 */
function refresh(stale) {
  if (!refreshing) {
    const run = async () => {
      const cur = session();
      if (!cur) throw new ApiError(401, 'Signed out.');
      if (cur.sessionToken !== stale.sessionToken && cur.expiresAt - Date.now() > REFRESH_MARGIN) return cur;
      const res = await fetch('/auth/refresh', {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-API-Key': apiKey(),
          Authorization: `Bearer ${cur.sessionToken}`,
        },
      });
      const grant = await json(res);
      // Signed out while the refresh was under way, in this tab or another:
      // the grant is nobody's, and storing it would sign the browser back
      // in. Signed in again since, here or in another tab, perhaps as
      // someone else: that session is the one, and the grant nobody's.
      const now = session();
      if (!now || !apiKey()) throw new ApiError(401, 'Signed out.');
      if (now.sessionToken !== cur.sessionToken) return now;
      return saveSession(grant);
    };
    const locked = navigator.locks ? navigator.locks.request('ovrlrd.session', run) : run();
    refreshing = locked
      .catch((err) => {
        // Only a refused refresh ends the session: a network blip or a
        // 5xx may pass, and the session with it.
        if (err instanceof ApiError && err.status === 401) signedOut();
        throw err;
      })
      .finally(() => {
        refreshing = null;
        scheduleRefresh();
      });
  }
  return refreshing;
}

/** fresh is a session that does not expire within the margin. */
async function fresh() {
  const s = session();
  if (!s || !apiKey()) throw new ApiError(401, 'Signed out.');
  if (s.expiresAt - Date.now() > REFRESH_MARGIN) return s;
  return refresh(s);
}

let timer = 0;

/** scheduleRefresh refreshes the session REFRESH_MARGIN before it expires. */
export function scheduleRefresh() {
  clearTimeout(timer);
  const s = session();
  if (!s) return;
  const wait = Math.min(Math.max(s.expiresAt - REFRESH_MARGIN - Date.now(), 30_000), 2 ** 31 - 1);
  timer = setTimeout(() => fresh().catch(() => {}), wait);
}

function signedOut() {
  clearTimeout(timer);
  // Already gone: this tab signed out itself, or saw another tab do it.
  if (!session()) return;
  localStorage.removeItem(SESSION);
  signedOutHandler();
}

/**
 * request sends an authenticated request and returns the Response. A 401
 * is answered by one refresh and one retry; a second 401 signs out.
 */
export async function request(method, path, { body, headers = {}, signal } = {}) {
  const send = (s) =>
    fetch(path, {
      method,
      signal,
      headers: {
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
        'X-API-Key': apiKey(),
        Authorization: `Bearer ${s.sessionToken}`,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  let s = await fresh();
  let res = await send(s);
  if (res.status === 401) {
    s = await refresh(s);
    res = await send(s);
    if (res.status === 401) {
      signedOut();
      throw await errorOf(res);
    }
  }
  return res;
}

/** call is request for a JSON answer. */
export async function call(method, path, opts) {
  return json(await request(method, path, opts));
}

/**
 * signOut forgets the session and the key, then ends the session on the
 * server. Forgotten first, so that a refresh still under way stores
 * nothing; the server ends the whole session whichever of the two tokens
 * the logout carries.
 */
export async function signOut() {
  const s = session();
  const key = apiKey();
  clearTimeout(timer);
  clear();
  if (!s || !key) return;
  try {
    await fetch('/auth/logout', {
      method: 'POST',
      headers: { 'X-API-Key': key, Authorization: `Bearer ${s.sessionToken}` },
    });
  } catch {
    // Offline: the token is forgotten here, and lapses on the server.
  }
}

