// Sign in with Apple on the web, by redirect: the page goes to Apple's
// authorization endpoint (make dev's: its stand-in) and comes back to
// /web/ with the identity token in the URL's fragment, which never reaches
// a server. No scope is asked for, as Apple answers a request with one only
// by a form post to a server.
//
// state (random) ties the answer to the sign-in this tab started: a
// fragment made elsewhere (a link that signs the victim in to the
// attacker's account) is refused. nonce (random) is sent to Apple hashed,
// so the token carries only its hash; POST /auth gets the raw value, and
// the server checks one against the other: a token taken from somewhere
// else (a log, the browser's history) is worthless without the value this
// page kept.
//
// The API key typed before leaving waits in sessionStorage with them: it
// is this tab's alone, survives the trip to Apple, and is gone when the
// tab closes; it reaches localStorage, as the app keeps it, only with the
// session. A sign-in that fails leaves nothing behind.

import * as api from './api.js';

const PENDING = 'ovrlrd.appleSignIn';
const AUTHORIZE = 'https://appleid.apple.com/auth/authorize';

/** AppleSignInError is a sign-in refused in the page, with the reason to show. */
export class AppleSignInError extends Error {
  constructor(message) {
    super(message);
    this.name = 'AppleSignInError';
  }
}

/** options is config.json's apple with its defaults, or null when Apple is not offered. */
function options(config) {
  const a = config && typeof config.apple === 'object' ? config.apple : null;
  if (!a || typeof a.clientId !== 'string' || !a.clientId) return null;
  const str = (v) => (typeof v === 'string' && v ? v : '');
  return {
    clientId: a.clientId,
    authorizeURL: str(a.authorizeURL) || AUTHORIZE,
    redirectURI: str(a.redirectURI) || `${location.origin}/web/`,
    label: str(a.label) || 'Sign in with Apple',
  };
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** randomNonce is 32 random bytes in hex: a state or a nonce. */
export function randomNonce() {
  return hex(crypto.getRandomValues(new Uint8Array(32)));
}

async function sha256(text) {
  // Only a secure context (https, or loopback) has crypto.subtle.
  if (!crypto.subtle) throw new AppleSignInError('Sign in with Apple needs the page over https (or at localhost).');
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))));
}

/** start keeps what the way back needs, then leaves for Apple. */
async function start(opts, key) {
  const url = new URL(opts.authorizeURL);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new AppleSignInError('The configured Apple address is not a web address.');
  const state = randomNonce();
  const nonce = randomNonce();
  url.search = new URLSearchParams({
    client_id: opts.clientId,
    redirect_uri: opts.redirectURI,
    response_type: 'code id_token',
    response_mode: 'fragment',
    state,
    nonce: await sha256(nonce),
  }).toString();
  sessionStorage.setItem(PENDING, JSON.stringify({ state, nonce, key }));
  location.assign(url.href);
}

/**
 * takeReturn reads Apple's answer out of the URL's fragment and takes it
 * out of the URL (and so out of the history) before anything else reads
 * it; null when the fragment is no answer (#/c/<id> is the router's).
 */
export function takeReturn() {
  const hash = location.hash;
  if (hash.length < 2 || hash.startsWith('#/')) return null;
  const p = new URLSearchParams(hash.slice(1));
  if (!['id_token', 'code', 'state', 'error'].some((k) => p.has(k))) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return { idToken: p.get('id_token') || '', state: p.get('state') || '', error: p.get('error') || '' };
}

function pending() {
  let p = null;
  try {
    p = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  } catch {
    // unreadable: as good as none
  }
  sessionStorage.removeItem(PENDING);
  const ok = p && ['state', 'nonce', 'key'].every((k) => typeof p[k] === 'string' && p[k]);
  return ok ? p : null;
}

/**
 * forget drops a sign-in that did not come back: the page loaded with no
 * answer in its URL (Back from Apple, a reload), so nothing can use it.
 */
export function forget() {
  sessionStorage.removeItem(PENDING);
}

/** finish signs in with Apple's answer, if it is the one this tab asked for. */
export async function finish(answer) {
  const p = pending();
  if (!p) throw new AppleSignInError('No Sign in with Apple was started in this tab: sign in again.');
  if (answer.state !== p.state) {
    throw new AppleSignInError('The answer is not the one this tab asked Apple for (its state differs), so it was not used: sign in again.');
  }
  if (answer.error === 'user_cancelled_authorize') throw new AppleSignInError('Sign in with Apple was cancelled.');
  if (answer.error) throw new AppleSignInError(`Sign in with Apple failed (${answer.error.slice(0, 100)}).`);
  if (!answer.idToken) throw new AppleSignInError('Apple sent no identity token: sign in again.');
  return api.signIn(p.key, answer.idToken, p.nonce);
}

/** offered is the Apple config.json names, while the button shows. */
let offered = null;

/**
 * offer shows the Sign in with Apple button in container when config
 * offers Apple. key() is the API key typed (focusKey() asks for it),
 * status(text, kind) says what happens.
 */
export function offer(container, config, { key, focusKey, status }) {
  offered = options(config);
  let button = document.getElementById('signin-apple');
  if (!offered) {
    button?.remove();
    return;
  }
  if (!button) {
    button = document.createElement('button');
    button.id = 'signin-apple';
    button.type = 'button';
    button.addEventListener('click', async () => {
      const k = key();
      if (!k) {
        status('Enter the API key first.', 'error');
        focusKey();
        return;
      }
      button.disabled = true;
      status('Going to Apple…');
      try {
        await start(offered, k);
      } catch (err) {
        button.disabled = false;
        status(err instanceof AppleSignInError ? err.message : `Could not go to Apple (${err.message}).`, 'error');
      }
    });
    // Back from Apple without an answer: this page again, as it was left.
    window.addEventListener('pageshow', (e) => {
      if (!e.persisted) return;
      sessionStorage.removeItem(PENDING);
      button.disabled = false;
      status('');
    });
    container.append(button);
  }
  button.disabled = false;
  button.textContent = offered.label;
}
