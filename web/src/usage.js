// A conversation's cost and tokens in its header: as GET /chat/{id} reads
// them, and read again when a turn ends (its terminal event carries no
// usage, and is sent only once the turn's usage is saved).

import * as api from './api.js';

let el = null;
/** shown is the conversation the header shows the usage of, or "". */
let shown = '';

export function init() {
  el = document.getElementById('chat-usage');
}

const count = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

function cost(usd) {
  // Cents hide the first turns of a small model: four places below a dollar.
  return usd < 1 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

/** show puts conversation c's usage in the header; null clears it. */
export function show(c) {
  if (!el) return;
  if (!c || typeof c.id !== 'string') {
    shown = '';
    el.hidden = true;
    el.textContent = '';
    return;
  }
  const usd = Number(c.costUsd) || 0;
  const input = Number(c.inputTokens) || 0;
  const output = Number(c.outputTokens) || 0;
  shown = c.id;
  el.dataset.costUsd = String(usd);
  el.dataset.inputTokens = String(input);
  el.dataset.outputTokens = String(output);
  el.textContent = `${cost(usd)} · ${count.format(input)} tokens in, ${count.format(output)} out`;
  el.hidden = false;
}

/** turnEnded reads conversation id's usage again, if the header still shows it or nothing. */
export async function turnEnded(id) {
  if (!el || !id || (shown && shown !== id)) return;
  shown = id;
  try {
    const d = await api.call('GET', `/chat/${encodeURIComponent(id)}?limit=1`);
    if (shown === id && d && d.conversation) show(d.conversation);
  } catch {
    // The figures stay as they were; the next turn or opening reads them.
  }
}
