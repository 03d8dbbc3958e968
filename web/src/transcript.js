// The transcript: stored messages, and a turn's events as they stream.

import { setMarkdown } from './render.js';

const ROLE_LABELS = { user: 'You', assistant: 'Claude', system: 'System' };

/**
 * messageEl is one message, its text rendered as Markdown. Who wrote it is
 * its accessible name (and, from the stylesheet, a visible label), so the
 * element's text is the message's alone.
 */
export function messageEl(role, text) {
  const safeRole = Object.hasOwn(ROLE_LABELS, role) ? role : 'system';
  const el = document.createElement('article');
  el.className = `message ${safeRole}`;
  el.setAttribute('aria-label', ROLE_LABELS[safeRole]);
  const body = document.createElement('div');
  body.className = 'body';
  setMarkdown(body, text);
  el.append(body);
  return el;
}

/** noticeEl is a line about the turn: its end, or an error (kind "error"). */
export function noticeEl(text, kind = 'info') {
  const el = document.createElement('p');
  el.className = `notice ${kind}`;
  if (kind === 'error') el.setAttribute('role', 'alert');
  el.textContent = text;
  return el;
}

function describeInput(input) {
  if (input && typeof input === 'object' && typeof input.command === 'string') return input.command;
  try {
    return JSON.stringify(input ?? {}, null, 2);
  } catch {
    return '';
  }
}

/**
 * Turn shows one turn's events in the transcript: chunks into the
 * streaming assistant message (aria-busy="true" until the terminal
 * event), tool lines, approval cards and the end.
 *
 * hooks: conversation(id) when an event names the conversation,
 * title(title) on complete, answer(card, requestId, decision) for an
 * approval button, end(event) after the terminal event.
 */
export class Turn {
  constructor(transcript, hooks) {
    this.transcript = transcript;
    this.hooks = hooks;
    this.segments = [];
    this.tools = [];
    this.cards = [];
    this.current = null;
    this.timer = 0;
    this.ended = false;
    this.newSegment();
  }

  newSegment() {
    const el = messageEl('assistant', '');
    el.setAttribute('aria-busy', 'true');
    el.classList.add('streaming');
    this.transcript.append(el);
    this.current = { el, body: el.querySelector('.body'), text: '' };
    this.segments.push(this.current);
    return this.current;
  }

  /** place puts el (a tool line or a card) where the turn has got to. */
  place(el) {
    const cur = this.current;
    if (cur && cur.text.trim() === '') {
      this.transcript.insertBefore(el, cur.el);
    } else {
      this.transcript.append(el);
      this.current = null;
    }
  }

  render(seg) {
    setMarkdown(seg.body, seg.text);
  }

  schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = 0;
      if (this.current) this.render(this.current);
    }, 30);
  }

  flush() {
    clearTimeout(this.timer);
    this.timer = 0;
    for (const seg of this.segments) this.render(seg);
  }

  /** handle shows one event; it reports whether the event ended the turn. */
  handle(ev) {
    if (this.ended) return true;
    if (typeof ev.conversationId === 'string' && ev.conversationId) this.hooks.conversation?.(ev.conversationId);
    switch (ev.type) {
      case 'chunk': {
        const seg = this.current || this.newSegment();
        seg.text += typeof ev.content === 'string' ? ev.content : '';
        this.schedule();
        return false;
      }
      case 'segment_end': {
        const seg = this.current || this.newSegment();
        if (typeof ev.content === 'string') seg.text = ev.content;
        this.render(seg);
        this.current = null;
        return false;
      }
      case 'tool_start': {
        if (this.current) this.render(this.current);
        const el = document.createElement('p');
        el.className = 'tool';
        el.dataset.state = 'start';
        const name = document.createElement('span');
        name.className = 'tool-name';
        name.textContent = typeof ev.toolName === 'string' && ev.toolName ? ev.toolName : 'Tool';
        const state = document.createElement('span');
        state.className = 'tool-state';
        state.textContent = 'running';
        el.append(name, state);
        this.place(el);
        this.tools.push(el);
        return false;
      }
      case 'tool_end':
        for (const el of this.tools) {
          if (el.dataset.state === 'start') {
            el.dataset.state = 'end';
            el.querySelector('.tool-state').textContent = 'done';
          }
        }
        return false;
      case 'permission_request':
        this.approval(ev);
        return false;
      case 'complete':
      case 'no_response':
      case 'permission_required':
      case 'error':
        this.end(ev);
        return true;
      default:
        return false; // ping, and anything newer than this client
    }
  }

  approval(ev) {
    const id = typeof ev.requestId === 'string' ? ev.requestId : '';
    if (!id || this.transcript.querySelector(`.approval[data-request-id="${CSS.escape(id)}"]`)) return;
    const card = document.createElement('section');
    card.className = 'approval';
    card.dataset.requestId = id;
    card.dataset.state = 'pending';
    const tool = typeof ev.toolName === 'string' && ev.toolName ? ev.toolName : 'a tool';
    card.setAttribute('aria-label', `Approve ${tool}`);
    const title = document.createElement('h3');
    title.textContent = `Claude wants to run ${tool}`;
    const input = document.createElement('pre');
    input.className = 'tool-input';
    input.textContent = describeInput(ev.toolInput);
    const expires = document.createElement('p');
    expires.className = 'expires';
    const at = Date.parse(ev.expiresAt);
    if (!Number.isNaN(at)) expires.textContent = `Waits until ${new Date(at).toLocaleTimeString()}.`;
    const buttons = document.createElement('div');
    buttons.className = 'buttons';
    const allow = document.createElement('button');
    allow.type = 'button';
    allow.className = 'allow';
    allow.textContent = 'Allow';
    const deny = document.createElement('button');
    deny.type = 'button';
    deny.className = 'deny';
    deny.textContent = 'Deny';
    buttons.append(allow, deny);
    const status = document.createElement('p');
    status.className = 'approval-status';
    status.setAttribute('role', 'status');
    card.append(title, input, expires, buttons, status);
    allow.addEventListener('click', () => this.hooks.answer?.(card, id, 'allow'));
    deny.addEventListener('click', () => this.hooks.answer?.(card, id, 'deny'));
    this.place(card);
    this.cards.push(card);
  }

  /** end closes the turn: ev is its terminal event, or null when it was lost. */
  end(ev) {
    if (this.ended) return;
    this.ended = true;
    this.flush();
    for (const seg of this.segments) {
      seg.el.setAttribute('aria-busy', 'false');
      seg.el.classList.remove('streaming');
      if (seg.text.trim() === '') seg.el.remove();
    }
    this.current = null;
    for (const card of this.cards) {
      if (card.dataset.state === 'pending') {
        card.dataset.state = 'closed';
        for (const b of card.querySelectorAll('button')) b.disabled = true;
      }
    }
    const type = ev?.type;
    if (type === 'complete' && typeof ev.title === 'string' && ev.title) this.hooks.title?.(ev.title);
    if (type === 'no_response') {
      this.transcript.append(noticeEl(ev.message || 'Claude gave no answer.'));
    } else if (type === 'permission_required') {
      const names = [...new Set((ev.denials || []).map((d) => d && d.tool_name).filter(Boolean))];
      this.transcript.append(
        noticeEl(`The turn ended: Claude needed permission for ${names.join(', ') || 'a tool'}.`, 'warning'),
      );
    } else if (type === 'error') {
      this.transcript.append(noticeEl(ev.message || 'The turn failed.', 'error'));
    }
    this.hooks.end?.(ev);
  }
}
