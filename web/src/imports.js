// Importing a terminal session: its .jsonl file, chosen in the page and
// sent inline (POST /chat/import). A larger one needs the presigned upload
// to S3, another origin the CSP's connect-src refuses: the page says to
// use the desk's command for it, before sending anything.

import * as api from './api.js';
import { errorText } from './status.js';

/** The server's limit on a transcript sent inline (ovrlrd.MaxInlineTranscript). */
const MAX_INLINE = 5_000_000;

// In AWS the body reaches Lambda escaped once more into its event, which
// holds at most 6 MiB with 64 KiB left for the event's other fields: what
// the desk's command measures too (cmd/ovrlrd).
const LAMBDA_PAYLOAD = 6 << 20;
const EVENT_OVERHEAD = 64 << 10;

const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
const onlyUUID = new RegExp(`^${uuid.source}$`, 'i');
const utf8 = new TextEncoder();

let ui = null;
let imported = () => {};

export function init(hooks) {
  ui = {
    input: document.getElementById('import-file'),
    status: document.getElementById('import-status'),
  };
  imported = hooks.imported;
  ui.input.addEventListener('change', () => {
    const file = ui.input.files && ui.input.files[0];
    if (file) importFile(file);
  });
}

/** reset forgets what the last import said (at sign-out). */
export function reset() {
  ui.input.value = '';
  say('');
}

function say(text, kind = '', link = null) {
  ui.status.replaceChildren(text);
  ui.status.dataset.kind = kind;
  if (link) ui.status.append(' ', link);
}

function megabytes(n) {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/**
 * sessionIdOf is the session's id: the file's name, as the CLI names its
 * transcripts (<session id>.jsonl), or else the first line that names one.
 */
function sessionIdOf(name, text) {
  const stem = name.replace(/\.jsonl$/i, '');
  if (onlyUUID.test(stem)) return stem;
  for (const line of text.split('\n', 50)) {
    try {
      const e = JSON.parse(line);
      if (e && typeof e.sessionId === 'string' && onlyUUID.test(e.sessionId)) return e.sessionId;
    } catch {
      // not a line the server would take either: it says which
    }
  }
  return '';
}

/** tooLarge refuses a file: over MAX_INLINE, or (escaped) over what one request carries. */
function tooLarge(size, escaped = false) {
  const why = escaped
    ? `${megabytes(size)}, too much once escaped into one request`
    : `${megabytes(size)}; at most ${megabytes(MAX_INLINE)} fits in one request`;
  say(`This session is too large to import from the browser (${why}). Import it with the desk command: ovrlrd import <session id>.`, 'error');
}

async function importFile(file) {
  ui.input.disabled = true;
  try {
    if (file.size > MAX_INLINE) return tooLarge(file.size);
    say(`Importing ${file.name}…`);
    const transcript = await file.text();
    const sessionId = sessionIdOf(file.name, transcript);
    if (!sessionId) {
      say('This file names no session: choose a transcript Claude Code wrote (~/.claude/projects/…/<session id>.jsonl).', 'error');
      return;
    }
    const body = { sessionId, transcript };
    if (utf8.encode(JSON.stringify(JSON.stringify(body))).length + EVENT_OVERHEAD > LAMBDA_PAYLOAD) {
      return tooLarge(file.size, true);
    }
    let got;
    try {
      got = await api.call('POST', '/chat/import', { body });
    } catch (err) {
      const known = err instanceof api.ApiError && err.status === 409 && err.message.match(uuid);
      if (known) {
        const a = document.createElement('a');
        a.href = `#/c/${encodeURIComponent(known[0].toLowerCase())}`;
        a.textContent = 'Open it';
        say(err.message, 'error', a);
      } else {
        say(errorText(err), 'error');
      }
      return;
    }
    say(`Imported ${got.messageCount} messages.`);
    imported(got);
  } finally {
    ui.input.disabled = false;
    // The same file may be chosen again (after an error, say).
    ui.input.value = '';
  }
}
