// The web client: sign-in (Sign in with Apple, apple.js, or make dev's
// local stand-in), the conversation list, a conversation's transcript, and
// streamed turns with live approvals, picked up again when a stream drops.
// Projects, imports, usage and the account live in modules of their own;
// this one routes and ties them together.

import * as api from './api.js';
import * as apple from './apple.js';
import { readEvents, turnOf } from './sse.js';
import { errorText, setStatus } from './status.js';
import { messageEl, noticeEl, Turn } from './transcript.js';
import * as projects from './projects.js';
import * as imports from './imports.js';
import * as account from './account.js';
import * as usage from './usage.js';

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

const PAGE = 20;
const MESSAGES = 50;
const MAX_FAILURES = 8;

const ui = {};

/** view is the open conversation (id null: a new one, before its first event names it). */
let view = null;
let listCursor = null;

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

// Sign-in.

/** shownUser is the user whose account the page shows, "" while it shows none. */
let shownUser = '';

/** forgetScreen takes the account shown off the page: list, transcript, title, URL. */
function forgetScreen() {
  if (view) closeView();
  projects.reset();
  imports.reset();
  ui.conversations.replaceChildren();
  ui.transcript.replaceChildren();
  document.title = 'Ovrlrd';
  if (location.hash) history.replaceState(null, '', location.pathname);
  shownUser = '';
}

/** showSignIn shows the sign-in, with a message of kind "error" unless kind says otherwise. */
async function showSignIn(message = '', kind = message ? 'error' : '') {
  forgetScreen();
  ui.sidebar.hidden = true;
  ui.toggle.hidden = true;
  ui.chat.hidden = true;
  ui.signout.hidden = true;
  account.setShown(false);
  ui.signin.hidden = false;
  ui.apiKey.value = api.apiKey();
  setStatus(ui.signinStatus, message, kind);
  const config = await api.webConfig();
  if (config.signIn === 'local') {
    let button = $('signin-local');
    if (!button) {
      button = document.createElement('button');
      button.id = 'signin-local';
      button.type = 'submit';
      ui.signinMethods.append(button);
    }
    button.textContent = typeof config.label === 'string' && config.label ? config.label : 'Local sign-in';
  }
  apple.offer(ui.signinMethods, config, {
    key: () => ui.apiKey.value.trim(),
    focusKey: () => ui.apiKey.focus(),
    status: (text, kind) => setStatus(ui.signinStatus, text, kind),
  });
  if (!ui.signinMethods.childElementCount) {
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = 'No way to sign in is configured for the web client on this server (the README says how to set up Sign in with Apple).';
    ui.signinMethods.append(p);
  }
}

/** signInReturned finishes a Sign in with Apple that came back to the page. */
async function signInReturned(back) {
  setStatus(ui.signinStatus, 'Signing in with Apple…');
  try {
    await apple.finish(back);
    setStatus(ui.signinStatus, '');
    showApp();
  } catch (err) {
    const message = err instanceof apple.AppleSignInError ? err.message : errorText(err);
    if (!api.signedIn()) {
      showSignIn(message);
      return;
    }
    // Still signed in (a stray answer, say a link to /web/#state=…): the app, and why.
    if (!ui.signin.hidden) showApp();
    setStatus(ui.turnStatus, message, 'error');
  }
}

/** navigated takes Apple's answer out of the URL, if that is what came, before the router reads it. */
function navigated() {
  const back = apple.takeReturn();
  if (back) signInReturned(back);
  else route();
}

async function signInLocal(event) {
  event.preventDefault();
  const button = $('signin-local');
  if (!button) return;
  const key = ui.apiKey.value.trim();
  if (!key) {
    setStatus(ui.signinStatus, 'Enter the API key first.', 'error');
    ui.apiKey.focus();
    return;
  }
  button.disabled = true;
  setStatus(ui.signinStatus, 'Signing in…');
  try {
    const nonce = apple.randomNonce();
    const token = await api.localIdentityToken(key, 'Web user', nonce);
    await api.signIn(key, token, nonce);
    setStatus(ui.signinStatus, '');
    showApp();
  } catch (err) {
    setStatus(ui.signinStatus, errorText(err), 'error');
  } finally {
    button.disabled = false;
  }
}

async function signOut() {
  ui.signout.disabled = true;
  try {
    await api.signOut();
  } finally {
    ui.signout.disabled = false;
    history.replaceState(null, '', location.pathname);
    showSignIn();
  }
}

// The signed-in app.

function showApp() {
  // Another account than the one on the page (a sign-in here or in another
  // tab): nothing of the first may stay, or act as the second.
  const user = api.session()?.userId || '';
  if (shownUser && shownUser !== user) forgetScreen();
  shownUser = user;
  ui.signin.hidden = true;
  ui.sidebar.hidden = false;
  ui.toggle.hidden = false;
  ui.chat.hidden = false;
  ui.signout.hidden = false;
  account.setShown(true);
  api.scheduleRefresh();
  loadConversations(false);
  route();
}

/** setListShown folds the conversation list away, or shows it (phones only). */
function setListShown(shown) {
  document.body.classList.toggle('list-folded', !shown);
  ui.toggle.setAttribute('aria-expanded', String(shown));
}

async function loadConversations(more) {
  ui.more.disabled = true;
  setStatus(ui.listStatus, more ? 'Loading…' : '');
  try {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (more && listCursor) q.set('cursor', listCursor);
    const page = await api.call('GET', `/chat?${q}`);
    if (!more) ui.conversations.replaceChildren();
    for (const c of page.conversations || []) addConversation(c, false);
    listCursor = page.hasMore ? page.nextCursor : null;
    ui.more.hidden = !listCursor;
    setStatus(ui.listStatus, ui.conversations.childElementCount ? '' : 'No conversations yet.');
    markCurrent();
  } catch (err) {
    setStatus(ui.listStatus, errorText(err), 'error');
  } finally {
    ui.more.disabled = false;
  }
}

function conversationLink(id) {
  return ui.conversations.querySelector(`a[data-id="${CSS.escape(id)}"]`);
}

/** addConversation lists c, at the top when first is set (a conversation just made). */
function addConversation(c, first) {
  if (!c || typeof c.id !== 'string') return;
  let a = conversationLink(c.id);
  if (!a) {
    const li = document.createElement('li');
    a = document.createElement('a');
    a.dataset.id = c.id;
    a.href = `#/c/${enc(c.id)}`;
    li.append(a);
    if (first) ui.conversations.prepend(li);
    else ui.conversations.append(li);
  }
  const title = document.createElement('span');
  title.className = 'title';
  title.textContent = c.title || 'Untitled';
  a.replaceChildren(title);
  const at = Date.parse(c.updatedAt);
  if (!Number.isNaN(at)) {
    const time = document.createElement('time');
    time.dateTime = new Date(at).toISOString();
    time.textContent = new Date(at).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
    a.append(time);
  }
  setStatus(ui.listStatus, '');
}

function markCurrent() {
  for (const a of ui.conversations.querySelectorAll('a[data-id]')) {
    if (view && a.dataset.id === view.id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// Routing: #/c/<id> is a conversation, anything else a new one.

// A conversation id as the server makes them (a UUID); anything else in the
// URL opens a new conversation rather than reaching a path of the API.
const conversationID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function route() {
  if (!api.signedIn()) return;
  const m = /^#\/c\/([0-9a-f-]+)$/.exec(location.hash);
  const id = m && conversationID.test(m[1]) ? m[1] : null;
  if (view && view.id === id) return;
  if (id) openConversation(id);
  else openNew();
}

function newView(id) {
  if (view) closeView();
  view = {
    id,
    abort: new AbortController(),
    seen: new Set(),
    lastId: '',
    turnId: '',
    turn: null,
    cursor: null,
    startedAt: 0,
  };
  ui.transcript.replaceChildren();
  ui.older.hidden = true;
  setStatus(ui.turnStatus, '');
  setRunning(false);
  usage.show(null);
  ui.deleteButton.hidden = !id;
  projects.show(id);
  markCurrent();
  return view;
}

/** closeView stops following the open conversation; its turn goes on. */
function closeView() {
  if (!view) return;
  view.abort.abort();
  if (view.turn) clearTimeout(view.turn.timer);
  view = null;
}

function setTitle(text) {
  ui.title.textContent = text;
  document.title = `${text} · Ovrlrd`;
}

function openNew() {
  newView(null);
  setTitle('New conversation');
  ui.message.focus();
}

function atBottom() {
  const s = ui.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
}

function scrollDown() {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
}

async function openConversation(id) {
  const v = newView(id);
  setTitle('Loading…');
  try {
    const d = await api.call('GET', `/chat/${enc(id)}?limit=${MESSAGES}`, { signal: v.abort.signal });
    if (view !== v) return;
    setTitle(d.conversation?.title || 'Untitled');
    addConversation(d.conversation, false);
    projects.showConversation(d.conversation);
    usage.show(d.conversation);
    markCurrent();
    let messages = d.messages || [];
    const active = d.activeTurn;
    if (active) {
      // The running turn's answer is replayed from its start: its stored
      // messages (should it end between the two reads) would show twice.
      const since = Date.parse(active.startedAt);
      if (!Number.isNaN(since)) messages = messages.filter((m) => m.role === 'user' || !(Date.parse(m.createdAt) >= since));
    }
    for (const m of messages) ui.transcript.append(messageEl(m.role, m.content));
    v.cursor = d.hasMore ? d.nextCursor : null;
    ui.older.hidden = !v.cursor;
    scrollDown();
    if (active) {
      v.turnId = active.id || '';
      startTurn(v);
      follow(v, null);
    }
  } catch (err) {
    if (view !== v || v.abort.signal.aborted) return;
    setTitle('Conversation');
    ui.transcript.append(noticeEl(errorText(err), 'error'));
    if (err instanceof api.ApiError && err.status === 404) ui.deleteButton.hidden = true;
  }
}

async function olderMessages() {
  const v = view;
  if (!v || !v.id || !v.cursor) return;
  ui.older.disabled = true;
  try {
    const q = new URLSearchParams({ limit: String(MESSAGES), cursor: v.cursor });
    const d = await api.call('GET', `/chat/${enc(v.id)}?${q}`, { signal: v.abort.signal });
    if (view !== v) return;
    const height = ui.scroller.scrollHeight;
    const frag = document.createDocumentFragment();
    for (const m of d.messages || []) frag.append(messageEl(m.role, m.content));
    ui.transcript.prepend(frag);
    ui.scroller.scrollTop += ui.scroller.scrollHeight - height;
    v.cursor = d.hasMore ? d.nextCursor : null;
    ui.older.hidden = !v.cursor;
  } catch (err) {
    if (view === v) setStatus(ui.turnStatus, errorText(err), 'error');
  } finally {
    ui.older.disabled = false;
  }
}

async function deleteConversation() {
  const v = view;
  if (!v || !v.id) return;
  if (!confirm('Delete this conversation? Its messages are deleted for good.')) return;
  try {
    await api.call('DELETE', `/chat/${enc(v.id)}`);
    conversationLink(v.id)?.closest('li')?.remove();
    history.pushState(null, '', location.pathname);
    openNew();
  } catch (err) {
    setStatus(ui.turnStatus, errorText(err), 'error');
  }
}

// Turns.

function setRunning(running) {
  ui.cancel.hidden = !running;
  ui.cancel.disabled = false;
  ui.send.disabled = running;
}

/** learned takes the id of the conversation a new view's turn made. */
function learned(v, id) {
  if (v.id) return;
  v.id = id;
  if (view === v) {
    history.replaceState(null, '', `#/c/${enc(id)}`);
    ui.deleteButton.hidden = false;
    if (!conversationLink(id)) addConversation({ id, title: null, updatedAt: new Date().toISOString() }, true);
    markCurrent();
  }
}

function startTurn(v) {
  v.startedAt = Date.now();
  v.turn = new Turn(ui.transcript, {
    conversation: (id) => learned(v, id),
    title: (title) => {
      if (view === v) setTitle(title);
      if (v.id && conversationLink(v.id)) addConversation({ id: v.id, title, updatedAt: new Date().toISOString() }, false);
    },
    answer: (card, requestId, decision) => answer(v, card, requestId, decision),
    end: () => {
      if (view === v) {
        setRunning(false);
        setStatus(ui.turnStatus, '');
        if (v.id && ui.title.textContent === 'New conversation') setTitle('Untitled');
        if (v.id) reread(v);
        else projects.turnNeverBegan();
      }
    },
  });
  if (view === v) {
    setRunning(true);
    setStatus(ui.turnStatus, 'Claude is answering…');
  }
  scrollDown();
}

/**
 * reread reads the conversation once its turn ended: its cost and tokens
 * changed, and a new one's first turn fixed its project and branch.
 */
async function reread(v) {
  try {
    const d = await api.call('GET', `/chat/${enc(v.id)}?limit=1`, { signal: v.abort.signal });
    if (view !== v || !d?.conversation) return;
    projects.showConversation(d.conversation);
    usage.show(d.conversation);
  } catch {
    // The header stays as it was; opening the conversation again reads it.
  }
}

async function send(event) {
  event.preventDefault();
  const v = view;
  const text = ui.message.value.trim();
  if (!v || !text || (v.turn && !v.turn.ended)) return;
  ui.transcript.append(messageEl('user', text));
  ui.message.value = '';
  startTurn(v);
  const path = v.id ? `/chat/${enc(v.id)}/stream` : '/chat/stream';
  let res;
  try {
    res = await api.request('POST', path, {
      body: { message: text, approvals: 'live', ...(v.id ? {} : projects.chosen()) },
      headers: { Accept: 'text/event-stream' },
      signal: v.abort.signal,
    });
  } catch (err) {
    if (v.abort.signal.aborted) return;
    // Nothing says whether the turn began: look for it.
    v.turn.end(null);
    ui.transcript.append(noticeEl(errorText(err), 'error'));
    return;
  }
  if (!res.ok) {
    const err = await api.errorOf(res);
    v.turn.end(null);
    ui.transcript.append(noticeEl(err.message, 'error'));
    if (!v.id) ui.message.value = text;
    return;
  }
  follow(v, res);
}

/**
 * findConversation is the conversation a new view's turn made, for a
 * stream that dropped (or a cancel) before any event named it: the newest
 * conversation whose running turn is this one.
 */
async function findConversation(v) {
  const page = await api.call('GET', '/chat?limit=5', { signal: v.abort.signal });
  for (const c of page.conversations || []) {
    const d = await api.call('GET', `/chat/${enc(c.id)}?limit=1`, { signal: v.abort.signal });
    const turn = d.activeTurn && d.activeTurn.id;
    if (turn && (!v.turnId || turn === v.turnId)) return c.id;
  }
  const newest = (page.conversations || [])[0];
  if (newest && Date.parse(newest.createdAt) >= v.startedAt - 60_000) return newest.id;
  return null;
}

/**
 * follow shows a turn's events from res (the turn's own stream), or, when
 * it is null or drops before the terminal event, from GET
 * /chat/{id}/stream after the last id seen. An event whose id was seen is
 * dropped, so each shows once.
 */
async function follow(v, res) {
  const { signal } = v.abort;
  const state = { retry: 2000 };
  let failures = 0;
  while (!signal.aborted && !v.turn.ended) {
    let progressed = false;
    try {
      if (!res) {
        if (!v.id) {
          const id = await findConversation(v);
          if (!id) throw new api.ApiError(0, 'Lost the turn: its conversation could not be found.');
          learned(v, id);
        }
        const headers = { Accept: 'text/event-stream' };
        if (v.lastId) headers['Last-Event-ID'] = v.lastId;
        res = await api.request('GET', `/chat/${enc(v.id)}/stream`, { headers, signal });
        if (res.status === 204) {
          // Nothing more will come: the turn is over and its end was seen
          // by another stream, or it ended before it sent one.
          v.turn.end(null);
          if (view === v) openConversation(v.id);
          return;
        }
        if (!res.ok) {
          const err = await api.errorOf(res);
          if (res.status >= 400 && res.status < 500 && res.status !== 429) {
            v.turn.end({ type: 'error', message: err.message });
            return;
          }
          throw err;
        }
      }
      if (view === v) setStatus(ui.turnStatus, 'Claude is answering…');
      for await (const { id, event } of readEvents(res, state)) {
        if (id) {
          if (v.seen.has(id)) continue;
          v.seen.add(id);
          v.lastId = id;
          if (!v.turnId) v.turnId = turnOf(id);
          progressed = true;
        }
        const stick = view === v && atBottom();
        const ended = v.turn.handle(event);
        if (stick) scrollDown();
        if (ended) return;
      }
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof api.ApiError && err.status === 401) return;
      if (err instanceof api.ApiError && err.status === 0) {
        v.turn.end({ type: 'error', message: err.message });
        return;
      }
    }
    res = null;
    if (signal.aborted) return;
    failures = progressed ? 0 : failures + 1;
    if (failures > MAX_FAILURES) {
      v.turn.end({ type: 'error', message: 'Lost the stream: the turn goes on on the server; open the conversation again later.' });
      return;
    }
    if (view === v) setStatus(ui.turnStatus, 'Reconnecting…');
    // A stream that ended cleanly after new events is taken up at once.
    await sleep(failures ? Math.min(state.retry * failures, 15_000) : 0, signal);
  }
}

async function cancelTurn() {
  const v = view;
  if (!v || !v.turn || v.turn.ended) return;
  ui.cancel.disabled = true;
  setStatus(ui.turnStatus, 'Cancelling…');
  try {
    if (!v.id) {
      const id = await findConversation(v);
      if (id) learned(v, id);
    }
    if (!v.id) throw new api.ApiError(0, 'The turn cannot be cancelled yet; try again in a moment.');
    await api.call('POST', `/chat/${enc(v.id)}/cancel`);
  } catch (err) {
    if (view === v) {
      ui.cancel.disabled = false;
      setStatus(ui.turnStatus, errorText(err), 'error');
    }
  }
}

async function answer(v, card, requestId, decision) {
  const buttons = card.querySelectorAll('button');
  const status = card.querySelector('.approval-status');
  for (const b of buttons) b.disabled = true;
  status.textContent = decision === 'allow' ? 'Allowing…' : 'Denying…';
  try {
    if (!v.id) throw new api.ApiError(0, 'The conversation is not known yet.');
    const got = await api.call('POST', `/chat/${enc(v.id)}/approvals/${enc(requestId)}`, { body: { decision } });
    card.dataset.state = got?.decision || decision;
    status.textContent = card.dataset.state === 'allow' ? 'Allowed.' : 'Denied.';
  } catch (err) {
    const closed = err instanceof api.ApiError && (err.status === 409 || err.status === 410 || err.status === 404);
    card.dataset.state = closed ? 'closed' : 'pending';
    status.textContent = errorText(err);
    if (!closed) for (const b of buttons) b.disabled = false;
  }
}

// Start.

function init() {
  // Before anything reads the URL: Apple's answer is no route, and the
  // identity token in it must not stay in the address bar or the history.
  const back = apple.takeReturn();
  Object.assign(ui, {
    signin: $('signin'),
    signinForm: $('signin-form'),
    signinMethods: $('signin-methods'),
    signinStatus: $('signin-status'),
    apiKey: $('api-key'),
    signout: $('signout'),
    toggle: $('toggle-conversations'),
    sidebar: $('sidebar'),
    conversations: $('conversations'),
    listStatus: $('conversations-status'),
    more: $('more-conversations'),
    newButton: $('new-conversation'),
    chat: $('chat'),
    title: $('chat-title'),
    deleteButton: $('delete-conversation'),
    scroller: $('scroller'),
    older: $('older-messages'),
    transcript: $('transcript'),
    turnStatus: $('turn-status'),
    composer: $('composer'),
    message: $('message'),
    send: $('send'),
    cancel: $('cancel'),
  });
  projects.init();
  usage.init();
  imports.init({
    imported: (got) => {
      addConversation({ id: got.conversationId, title: got.title, updatedAt: new Date().toISOString() }, true);
      location.hash = `#/c/${enc(got.conversationId)}`;
    },
  });
  account.init({
    deleted: () => {
      history.replaceState(null, '', location.pathname);
      showSignIn('Your account was deleted, with everything in it.', '');
    },
  });
  ui.signinForm.addEventListener('submit', signInLocal);
  ui.signout.addEventListener('click', signOut);
  ui.toggle.addEventListener('click', () => setListShown(document.body.classList.contains('list-folded')));
  ui.more.addEventListener('click', () => loadConversations(true));
  ui.newButton.addEventListener('click', () => {
    if (location.hash) history.pushState(null, '', location.pathname);
    openNew();
  });
  ui.deleteButton.addEventListener('click', deleteConversation);
  ui.older.addEventListener('click', olderMessages);
  ui.composer.addEventListener('submit', send);
  ui.message.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) ui.composer.requestSubmit();
  });
  ui.cancel.addEventListener('click', cancelTurn);
  window.addEventListener('hashchange', navigated);
  window.addEventListener('popstate', navigated);
  // Another tab signed out, or in with another key.
  window.addEventListener('storage', (e) => {
    if ((e.key === api.SESSION || e.key === api.API_KEY || e.key === null) && !api.signedIn() && ui.signin.hidden) {
      showSignIn('Signed out in another tab.');
    } else if ((e.key === api.SESSION || e.key === api.API_KEY) && api.signedIn() && !ui.signin.hidden) {
      // Signed in in another tab: this one follows.
      setStatus(ui.signinStatus, '');
      showApp();
    } else if ((e.key === api.SESSION || e.key === api.API_KEY) && api.signedIn() && ui.signin.hidden && (api.session()?.userId || '') !== shownUser) {
      // Signed in as someone else in another tab: this one shows that account.
      showApp();
    }
  });
  setListShown(true);
  api.onSignedOut(() => showSignIn('Your session ended: sign in again.'));
  if (!back) apple.forget();
  if (back) signInReturned(back);
  else if (api.signedIn()) showApp();
  else showSignIn();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
