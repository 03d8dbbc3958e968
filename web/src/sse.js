// Server-Sent Events over fetch: the API's streams need the X-API-Key and
// Authorization headers, which EventSource cannot send. Frames are LF
// separated; `id:` names the event it precedes ("<turn>.<n>"), `retry:`
// is the reconnection delay in milliseconds.

/**
 * readEvents yields {id, event} for each event of res's body, event being
 * its parsed JSON ({type, ...}); id is the event's own id line, or "".
 * Events whose data is not a JSON object are skipped. state.retry is set
 * from any retry line.
 */
export async function* readEvents(res, state = {}) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let data = [];
  let id = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          if (data.length) {
            const event = parse(data.join('\n'));
            if (event) yield { id, event };
          }
          data = [];
          id = '';
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? '' : line.slice(colon + 1);
        if (v.startsWith(' ')) v = v.slice(1);
        if (field === 'data') data.push(v);
        else if (field === 'id' && !v.includes('\0')) id = v;
        else if (field === 'retry' && /^\d+$/.test(v)) state.retry = Number(v);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function parse(text) {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && typeof v.type === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** turnOf is the turn part of an event id "<turn>.<n>". */
export function turnOf(id) {
  const dot = id.lastIndexOf('.');
  return dot > 0 ? id.slice(0, dot) : '';
}
