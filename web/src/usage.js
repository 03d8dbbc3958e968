// A conversation's cost and tokens in its header: as GET /chat/{id} reads
// them, when the conversation opens and again when a turn ends (its
// terminal event carries no usage, and is sent only once the turn's usage
// is saved); main.js does the reading.

let el = null;

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
  if (!c || typeof c.id !== 'string') {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  const usd = Number(c.costUsd) || 0;
  const input = Number(c.inputTokens) || 0;
  const output = Number(c.outputTokens) || 0;
  el.dataset.costUsd = String(usd);
  el.dataset.inputTokens = String(input);
  el.dataset.outputTokens = String(output);
  el.textContent = `${cost(usd)} · ${count.format(input)} tokens in, ${count.format(output)} out`;
  el.hidden = false;
}
