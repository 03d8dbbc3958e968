// Status lines: the one way every part of the page says what happens
// (the text, and data-kind "", "ok" or "error", which the CSS colours),
// and the one wording of a failed request.

import { ApiError } from './api.js';

/** setStatus shows text in el, of kind "", "ok" or "error". */
export function setStatus(el, text, kind = '') {
  el.textContent = text;
  el.dataset.kind = kind;
}

/** errorText is what a failed request says: the server's message, or that it was not reached. */
export function errorText(err) {
  if (err instanceof ApiError) return err.message;
  return `Could not reach the server (${err && err.message ? err.message : err}).`;
}
