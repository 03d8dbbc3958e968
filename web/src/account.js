// Deleting the account: a dialog that asks for the word DELETE typed out,
// so no stray click or key deletes anything, then DELETE /auth/account,
// which ends every session of the account at once.

import * as api from './api.js';
import { errorText, setStatus } from './status.js';

const WORD = 'DELETE';

let ui = null;
let deleted = () => {};

export function init(hooks) {
  ui = {
    open: document.getElementById('delete-account'),
    dialog: document.getElementById('delete-account-dialog'),
    form: document.getElementById('delete-account-form'),
    word: document.getElementById('delete-account-word'),
    confirm: document.getElementById('delete-account-confirm'),
    cancel: document.getElementById('delete-account-cancel'),
    status: document.getElementById('delete-account-status'),
  };
  deleted = hooks.deleted;
  ui.open.addEventListener('click', open);
  ui.cancel.addEventListener('click', () => ui.dialog.close());
  // Escape would close the dialog while the deletion is under way, and its
  // outcome would go unseen.
  ui.dialog.addEventListener('cancel', (e) => {
    if (ui.cancel.disabled) e.preventDefault();
  });
  ui.word.addEventListener('input', () => {
    ui.confirm.disabled = ui.word.value.trim() !== WORD;
  });
  ui.form.addEventListener('submit', submit);
}

/** setShown shows the control (signed in) or hides it and its dialog. */
export function setShown(shown) {
  ui.open.hidden = !shown;
  if (!shown && ui.dialog.open) ui.dialog.close();
}

function open() {
  ui.word.value = '';
  ui.confirm.disabled = true;
  setStatus(ui.status, '');
  ui.dialog.showModal();
  ui.word.focus();
}

async function submit(event) {
  event.preventDefault();
  if (ui.word.value.trim() !== WORD || ui.confirm.disabled) return;
  ui.confirm.disabled = true;
  ui.cancel.disabled = true;
  setStatus(ui.status, 'Deleting the account…');
  try {
    await api.call('DELETE', '/auth/account');
  } catch (err) {
    setStatus(ui.status, errorText(err), 'error');
    ui.confirm.disabled = false;
    return;
  } finally {
    ui.cancel.disabled = false;
  }
  ui.dialog.close();
  // Its sessions are gone on the server: nothing of it is kept here either.
  api.clear();
  deleted();
}
