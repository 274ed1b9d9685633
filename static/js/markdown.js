// Model Markdown -> safe DOM. marked renders, DOMPurify decides what survives.
// Raw HTML in the model's text is escaped and shown as text; images become
// links (an image URL could leak the conversation); only http(s) and mailto
// links keep their href, and they open with rel="noopener noreferrer".
// Fenced code is highlighted by highlight.js after sanitising, on the DOM.

import { copyWithFeedback, el, iconButton } from "./dom.js";

const { marked, DOMPurify, hljs } = window;

const SAFE_URL = /^(?:https?:|mailto:)/i;

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (char) => ESCAPES[char]);

const parser = new marked.Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html: ({ text }) => escapeHtml(text),
    image: ({ href, text }) => `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`,
  },
});

const PURIFY_CONFIG = {
  ALLOWED_TAGS: [
    "a", "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td",
  ],
  ALLOWED_ATTR: ["href", "title", "class", "start", "align"],
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName !== "A") return;
  const href = node.getAttribute("href") ?? "";
  if (!SAFE_URL.test(href.trim())) node.removeAttribute("href");
  node.setAttribute("target", "_blank");
  node.setAttribute("rel", "noopener noreferrer nofollow");
});

// Replace `target`'s children with the rendered, sanitised Markdown of `text`.
// While a reply streams, a cursor follows its last character: inside the code
// block when the text so far ends in an open fence.
export function renderMarkdown(target, text, { streaming = false } = {}) {
  const fragment = DOMPurify.sanitize(parser.parse(text), PURIFY_CONFIG);
  for (const code of fragment.querySelectorAll("pre > code")) highlight(code);
  decorateCodeBlocks(fragment);
  // Tables scroll sideways when wide (see chat.css): reachable with Tab too.
  for (const table of fragment.querySelectorAll("table")) table.tabIndex = 0;
  if (streaming) placeCursor(fragment);
  target.replaceChildren(fragment);
}

// Streaming re-renders the whole reply on every frame; blocks above the one
// being written do not change, so their highlighting comes from this cache.
const HIGHLIGHTED = new Map(); // `${language}\n${code}` -> sanitised HTML
const HIGHLIGHTED_MAX = 200;

function highlight(code) {
  const language = languageOf(code);
  if (!hljs || !language || !hljs.getLanguage(language)) return;
  const key = `${language}\n${code.textContent}`;
  let html = HIGHLIGHTED.get(key);
  if (html === undefined) {
    const { value } = hljs.highlight(code.textContent, { language, ignoreIllegals: true });
    // highlight.js escapes the code it wraps; sanitising again keeps that a guarantee.
    html = DOMPurify.sanitize(value, { ALLOWED_TAGS: ["span"], ALLOWED_ATTR: ["class"] });
    if (HIGHLIGHTED.size >= HIGHLIGHTED_MAX) HIGHLIGHTED.delete(HIGHLIGHTED.keys().next().value);
    HIGHLIGHTED.set(key, html);
  }
  code.innerHTML = html;
  code.classList.add("hljs");
}

function languageOf(code) {
  const languageClass = [...(code?.classList ?? [])].find((name) => name.startsWith("language-"));
  return languageClass ? languageClass.slice("language-".length) : "";
}

function decorateCodeBlocks(fragment) {
  for (const pre of fragment.querySelectorAll("pre")) {
    const language = languageOf(pre.querySelector("code")) || "code";
    const copy = iconButton("copy", "Copy code", { className: "code-copy", "data-testid": "copy-code" });
    copy.addEventListener("click", () => copyWithFeedback(copy, pre.textContent));
    const block = el("div", { className: "code-block" });
    // A long line scrolls sideways: keyboard users reach it with Tab.
    pre.tabIndex = 0;
    pre.replaceWith(block);
    block.append(el("div", { className: "code-header" }, el("span", { text: language }), copy), pre);
  }
}

// The cursor goes right after the last text the model wrote (not after the
// block that holds it, which would put it on a line of its own). Code
// headers are ours, not the model's; nothing written yet leaves no cursor.
function placeCursor(fragment) {
  const walker = document.createTreeWalker(fragment, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node.textContent.trim() && !node.parentElement?.closest(".code-header")
      ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT),
  });
  let last = null;
  while (walker.nextNode()) last = walker.currentNode;
  if (!last) return;
  last.after(el("span", { className: "stream-cursor", "data-testid": "stream-cursor", "aria-hidden": "true" }));
}
