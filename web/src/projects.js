// Projects: the picker of a new conversation, the bar of a conversation on
// a project (its branch, its changes as a diff, and the push of its
// branch), and the dialog that lists, adds, edits and deletes projects.
// Whatever the server sends reaches the page as text (textContent), the
// diff included: a repository's files are no more trusted than the model.

import * as api from './api.js';
import { errorText, setStatus } from './status.js';

const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

const ui = {};

/** list is GET /projects' answer as last read. */
let list = [];
/** open is the conversation the bar shows ({id, ...}), null for a new one. */
let open = null;
/** editing is the project the edit form changes. */
let editing = null;

function notEnabled(err) {
  return err instanceof api.ApiError && err.status === 404;
}

async function load() {
  const got = await api.call('GET', '/projects');
  list = Array.isArray(got?.projects) ? got.projects : [];
  return list;
}

// The new conversation's picker.

/**
 * fillPicker lists the projects. With a default project there is no "No
 * project": a turn that names none works on the default.
 */
function fillPicker() {
  const keep = ui.select.value;
  const def = list.find((p) => p.default);
  const options = [];
  if (!def) options.push(new Option('No project', ''));
  for (const p of list) {
    const o = new Option(p.default ? `${p.name} (default)` : p.name, p.id);
    options.push(o);
  }
  ui.select.replaceChildren(...options);
  ui.select.value = list.some((p) => p.id === keep) ? keep : def ? def.id : '';
}

async function showPicker() {
  ui.pick.hidden = false;
  ui.select.disabled = false;
  try {
    await load();
    if (open !== null) return;
    fillPicker();
    ui.bar.hidden = false;
  } catch (err) {
    if (open !== null) return;
    // A server without projects: nothing to pick.
    if (notEnabled(err)) ui.bar.hidden = true;
    else {
      setStatus(ui.status, errorText(err), 'error');
      ui.bar.hidden = false;
    }
  }
}

/**
 * show readies the bar for the conversation id, or for a new one (null):
 * the picker, or nothing until the conversation is read.
 */
export function show(id) {
  open = id ? { id } : null;
  ui.bar.hidden = true;
  ui.pick.hidden = true;
  ui.info.hidden = true;
  setStatus(ui.status, '');
  if (!id) showPicker();
}

/** chosen is what a new conversation's first turn sends for its project. */
export function chosen() {
  if (open !== null || ui.pick.hidden) return {};
  ui.select.disabled = true;
  return ui.select.value ? { projectId: ui.select.value } : {};
}

/** showConversation shows the project and branch of c, an open conversation. */
export function showConversation(c) {
  // A new conversation (open null) learns its own at its first turn's end.
  if (!c || (open !== null && c.id !== open.id)) return;
  open = c;
  ui.pick.hidden = true;
  if (!c.projectId) {
    ui.bar.hidden = true;
    return;
  }
  const name = c.workDir || 'a project';
  ui.infoText.replaceChildren();
  const project = document.createElement('strong');
  project.textContent = name;
  ui.infoText.append('Project ', project);
  if (c.branch) {
    const branch = document.createElement('code');
    branch.textContent = c.branch;
    ui.infoText.append(' · branch ', branch);
  }
  ui.info.hidden = false;
  ui.bar.hidden = false;
}

/** turnNeverBegan offers the picker again: a new conversation's turn that never began fixed nothing. */
export function turnNeverBegan() {
  if (open === null) ui.select.disabled = false;
}

// Changes and push.

function lineKind(line) {
  if (/^(diff |index |--- |\+\+\+ |new file|deleted file|similarity|rename |old mode|new mode|Binary files)/.test(line)) return 'meta';
  if (line.startsWith('@@')) return 'hunk';
  if (line.startsWith('+')) return 'add';
  if (line.startsWith('-')) return 'del';
  return 'ctx';
}

/** renderDiff shows a unified diff in pre, a line a span, as text. */
function renderDiff(pre, diff) {
  const lines = String(diff ?? '').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const frag = document.createDocumentFragment();
  for (const line of lines) {
    const span = document.createElement('span');
    span.className = `line ${lineKind(line)}`;
    span.textContent = `${line}\n`;
    frag.append(span);
  }
  pre.replaceChildren(frag);
}

async function showChanges() {
  const c = open;
  if (!c || !c.id) return;
  ui.changesButton.disabled = true;
  setStatus(ui.status, 'Reading the changes…');
  try {
    const got = await api.call('GET', `/chat/${enc(c.id)}/changes`);
    if (open !== c) return;
    setStatus(ui.status, '');
    const files = Array.isArray(got?.files) ? got.files : [];
    ui.changesSummary.textContent = files.length
      ? `${files.length} ${files.length === 1 ? 'file' : 'files'} changed on ${got.branch || 'the branch'}.`
      : `Nothing changed on ${got?.branch || 'the branch'} yet.`;
    ui.changesFiles.replaceChildren(
      ...files.map((f) => {
        const li = document.createElement('li');
        const path = document.createElement('code');
        path.textContent = String(f.path ?? '');
        li.append(path, ` ${String(f.status ?? '')}`);
        return li;
      }),
    );
    renderDiff(ui.diff, got?.diff);
    ui.diff.hidden = !got?.diff;
    ui.truncated.hidden = !got?.truncated;
    openDialog(ui.changesDialog, ui.changesButton);
  } catch (err) {
    if (open === c) setStatus(ui.status, errorText(err), 'error');
  } finally {
    ui.changesButton.disabled = false;
  }
}

async function push() {
  const c = open;
  if (!c || !c.id) return;
  ui.pushButton.disabled = true;
  setStatus(ui.status, 'Pushing…');
  try {
    const got = await api.call('POST', `/chat/${enc(c.id)}/push`);
    if (open !== c) return;
    const commit = typeof got?.commit === 'string' ? ` (commit ${got.commit.slice(0, 12)})` : '';
    setStatus(ui.status, `Pushed branch ${got?.branch || c.branch || ''}${commit}.`, 'ok');
  } catch (err) {
    if (open === c) setStatus(ui.status, `Push failed: ${errorText(err)}`, 'error');
  } finally {
    ui.pushButton.disabled = false;
  }
}

// Dialogs: modal, so the page behind is inert; Escape closes them, and
// focus goes back to the button that opened them.

const openers = new Map();

function openDialog(dialog, opener) {
  openers.set(dialog, opener);
  if (!dialog.open) dialog.showModal();
}

function closed(dialog) {
  const opener = openers.get(dialog);
  openers.delete(dialog);
  if (opener && !opener.hidden && opener.isConnected) opener.focus();
}

// Managing projects.

function projectItem(p) {
  const li = document.createElement('li');
  li.dataset.id = p.id;
  const main = document.createElement('div');
  main.className = 'project-main';
  const name = document.createElement('span');
  name.className = 'project-name';
  name.textContent = p.name;
  main.append(name);
  if (p.default) {
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.textContent = 'default';
    main.append(' ', badge);
  }
  if (p.label) {
    const label = document.createElement('span');
    label.className = 'project-label';
    label.textContent = p.label;
    main.append(label);
  }
  const where = document.createElement('span');
  where.className = 'muted project-url';
  where.textContent = `${p.repoUrl} · ${p.branch || 'default branch'} · ${p.hasToken ? 'token kept' : 'no token'}`;
  main.append(where);

  const actions = document.createElement('div');
  actions.className = 'project-actions';
  const named = (text, cls, fn) => {
    const b = document.createElement('button');
    b.type = 'button';
    if (cls) b.className = cls;
    const hidden = document.createElement('span');
    hidden.className = 'visually-hidden';
    hidden.textContent = ` ${p.name}`;
    b.append(text, hidden);
    b.addEventListener('click', () => fn(p, b));
    return b;
  };
  actions.append(named('Edit', 'edit', startEdit), named('Delete', 'danger delete', removeProject));
  li.append(main, actions);
  return li;
}

function fillList() {
  ui.list.replaceChildren(...list.map(projectItem));
  ui.empty.hidden = list.length > 0;
  if (open === null && !ui.pick.hidden) fillPicker();
}

async function reload() {
  try {
    await load();
    fillList();
  } catch (err) {
    setStatus(ui.manageStatus, errorText(err), 'error');
  }
}

async function openManager() {
  setStatus(ui.manageStatus, 'Loading…');
  stopEdit();
  openDialog(ui.manager, ui.manageButton);
  try {
    await load();
    fillList();
    setStatus(ui.manageStatus, '');
  } catch (err) {
    setStatus(ui.manageStatus, errorText(err), 'error');
  }
}

async function addProject(event) {
  event.preventDefault();
  const name = ui.name.value.trim();
  const repoUrl = ui.url.value.trim();
  if (!name || !repoUrl) {
    setStatus(ui.manageStatus, 'A project needs a name and a repository URL.', 'error');
    (name ? ui.url : ui.name).focus();
    return;
  }
  const body = { name, repoUrl, default: ui.isDefault.checked };
  if (ui.branch.value.trim()) body.branch = ui.branch.value.trim();
  if (ui.token.value) body.token = ui.token.value;
  if (isAPIKey(body.token)) {
    refuseAPIKey(ui.token);
    return;
  }
  ui.add.disabled = true;
  setStatus(ui.manageStatus, 'Checking the repository…');
  try {
    const got = await api.call('POST', '/projects', { body });
    ui.addForm.reset();
    await reload();
    setStatus(ui.manageStatus, `Added ${got?.project?.name || name}.`, 'ok');
  } catch (err) {
    setStatus(ui.manageStatus, errorText(err), 'error');
  } finally {
    ui.add.disabled = false;
  }
}

// A browser's password manager may offer the saved API key in a token
// field; sent, it would go to whatever host the repository URL names.
function isAPIKey(token) {
  return Boolean(token) && token === api.apiKey();
}

function refuseAPIKey(field) {
  setStatus(ui.manageStatus, 'That is the server\'s API key, not a token of the repository host: it is not sent.', 'error');
  field.value = '';
  field.focus();
}

function startEdit(p) {
  editing = p;
  ui.editTitle.textContent = `Edit ${p.name}`;
  ui.editName.value = p.name;
  ui.editLabel.value = p.label || '';
  ui.editToken.value = '';
  ui.editDropToken.checked = false;
  ui.editDropToken.disabled = !p.hasToken;
  ui.editDefault.checked = Boolean(p.default);
  ui.addForm.hidden = true;
  ui.editForm.hidden = false;
  setStatus(ui.manageStatus, '');
  ui.editName.focus();
}

function stopEdit() {
  const was = editing;
  editing = null;
  ui.editToken.value = '';
  ui.editForm.hidden = true;
  ui.addForm.hidden = false;
  return was;
}

async function saveEdit(event) {
  event.preventDefault();
  const p = editing;
  if (!p) return;
  const body = {};
  const name = ui.editName.value.trim();
  if (name !== p.name) body.name = name;
  const label = ui.editLabel.value.trim();
  if (label !== (p.label || '')) body.label = label;
  if (ui.editDropToken.checked) body.token = '';
  else if (ui.editToken.value) body.token = ui.editToken.value;
  if (isAPIKey(body.token)) {
    refuseAPIKey(ui.editToken);
    return;
  }
  if (ui.editDefault.checked !== Boolean(p.default)) body.default = ui.editDefault.checked;
  if (!Object.keys(body).length) {
    cancelEdit();
    return;
  }
  ui.save.disabled = true;
  setStatus(ui.manageStatus, 'Saving…');
  try {
    const got = await api.call('PATCH', `/projects/${enc(p.id)}`, { body });
    stopEdit();
    await reload();
    setStatus(ui.manageStatus, `Saved ${got?.project?.name || name}.`, 'ok');
    ui.list.querySelector(`li[data-id="${CSS.escape(p.id)}"] button.edit`)?.focus();
  } catch (err) {
    setStatus(ui.manageStatus, errorText(err), 'error');
  } finally {
    ui.save.disabled = false;
  }
}

function cancelEdit() {
  const p = stopEdit();
  setStatus(ui.manageStatus, '');
  if (p) ui.list.querySelector(`li[data-id="${CSS.escape(p.id)}"] button.edit`)?.focus();
}

async function removeProject(p, button) {
  if (!confirm(`Delete the project ${p.name}? Conversations on it keep their copies; the repository is not touched.`)) return;
  button.disabled = true;
  setStatus(ui.manageStatus, 'Deleting…');
  try {
    await api.call('DELETE', `/projects/${enc(p.id)}`);
    if (editing && editing.id === p.id) stopEdit();
    await reload();
    setStatus(ui.manageStatus, `Deleted ${p.name}.`, 'ok');
    ui.name.focus();
  } catch (err) {
    button.disabled = false;
    setStatus(ui.manageStatus, errorText(err), 'error');
  }
}

/** reset closes what is open: the session ended. */
export function reset() {
  for (const d of [ui.manager, ui.changesDialog]) if (d?.open) d.close();
  list = [];
  open = null;
  stopEdit();
  // A token typed but not sent must not wait for the next account.
  ui.addForm.reset();
  ui.editForm.reset();
  ui.list.replaceChildren();
  ui.bar.hidden = true;
}

export function init() {
  Object.assign(ui, {
    bar: $('project-bar'),
    pick: $('project-pick'),
    select: $('project-select'),
    info: $('project-info'),
    infoText: $('project-info-text'),
    changesButton: $('show-changes'),
    pushButton: $('push-branch'),
    status: $('project-status'),
    manageButton: $('manage-projects'),
    manager: $('projects-dialog'),
    list: $('project-list'),
    empty: $('projects-empty'),
    manageStatus: $('projects-status'),
    addForm: $('project-form'),
    name: $('project-name'),
    url: $('project-url'),
    branch: $('project-branch'),
    token: $('project-token'),
    isDefault: $('project-default'),
    add: $('project-add'),
    editForm: $('project-edit'),
    editTitle: $('project-edit-title'),
    editName: $('project-edit-name'),
    editLabel: $('project-edit-label'),
    editToken: $('project-edit-token'),
    editDropToken: $('project-edit-drop-token'),
    editDefault: $('project-edit-default'),
    save: $('project-save'),
    changesDialog: $('changes-dialog'),
    changesSummary: $('changes-summary'),
    changesFiles: $('changes-files'),
    diff: $('changes-diff'),
    truncated: $('changes-truncated'),
  });
  ui.manageButton.addEventListener('click', openManager);
  ui.addForm.addEventListener('submit', addProject);
  ui.editForm.addEventListener('submit', saveEdit);
  $('project-edit-cancel').addEventListener('click', cancelEdit);
  ui.editDropToken.addEventListener('change', () => {
    ui.editToken.disabled = ui.editDropToken.checked;
  });
  ui.changesButton.addEventListener('click', showChanges);
  ui.pushButton.addEventListener('click', push);
  for (const d of [ui.manager, ui.changesDialog]) {
    d.addEventListener('close', () => closed(d));
    for (const b of d.querySelectorAll('button.close-dialog')) b.addEventListener('click', () => d.close());
  }
  // Escape in the edit form leaves the edit, not the dialog.
  ui.manager.addEventListener('cancel', (e) => {
    if (editing) {
      e.preventDefault();
      cancelEdit();
    }
  });
}
