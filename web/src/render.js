// Markdown for the transcript: marked makes the HTML, highlight.js colours
// code blocks inside marked's renderer, DOMPurify cleans the result, and
// setMarkdown is the one place any HTML reaches the page (innerHTML).
// Raw HTML in a message is shown as text, never parsed, and images are not
// loaded: the model's output is not trusted.

import { Marked } from 'marked';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import javascript from 'highlight.js/lib/languages/javascript';
import typescript from 'highlight.js/lib/languages/typescript';
import json from 'highlight.js/lib/languages/json';
import go from 'highlight.js/lib/languages/go';
import python from 'highlight.js/lib/languages/python';
import swift from 'highlight.js/lib/languages/swift';

for (const [name, language] of Object.entries({ bash, javascript, typescript, json, go, python, swift })) {
  hljs.registerLanguage(name, language);
}
hljs.registerAliases(['shell', 'console'], { languageName: 'bash' });

const entities = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** escapeHTML returns s with the characters HTML gives meaning escaped. */
function escapeHTML(s) {
  return String(s).replace(/[&<>"']/g, (c) => entities[c]);
}

/** languageOf is a fence's language if highlight.js knows it, else "". */
function languageOf(info) {
  const name = (info || '').trim().split(/\s+/)[0].toLowerCase();
  return /^[a-z0-9_+#.-]{1,32}$/.test(name) && hljs.getLanguage(name) ? name : '';
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    code({ text, lang }) {
      const language = languageOf(lang);
      const body = language
        ? hljs.highlight(text, { language, ignoreIllegals: true }).value
        : escapeHTML(text);
      const cls = language ? `hljs language-${language}` : 'hljs';
      return `<pre><code class="${cls}">${body}</code></pre>\n`;
    },
    // Raw HTML, block or inline, is shown as the text it is.
    html({ text }) {
      return escapeHTML(text);
    },
    // An image is never loaded: the CSP refuses other origins (an error in
    // the console each time), and one of this origin could be any GET the
    // model names. A web image becomes a link to it, anything else its text.
    image({ href, title, text }) {
      const label = escapeHTML(text || title || href || 'image');
      if (!/^https?:\/\//i.test(href || '')) return label;
      return `<a href="${escapeHTML(href)}" class="image-link">${label}</a>`;
    },
  },
});

// Every link opens in a new browsing context, with no opener and no referrer.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

const purifyConfig = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'img'],
  FORBID_ATTR: ['style'],
};

/** renderMarkdown is text as sanitised HTML. */
function renderMarkdown(text) {
  return DOMPurify.sanitize(marked.parse(String(text ?? '')), purifyConfig);
}

/** setMarkdown shows text, as Markdown, as the content of el. */
export function setMarkdown(el, text) {
  el.innerHTML = renderMarkdown(text);
}
