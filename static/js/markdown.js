// Model Markdown -> safe DOM. marked renders, DOMPurify decides what survives.
// Raw HTML in the model's text is escaped and shown as text; images become
// links (an image URL could leak the conversation); only http(s) and mailto
// links keep their href, and they open with rel="noopener noreferrer".

import { copyWithFeedback, el, iconButton } from "./dom.js";

const { marked, DOMPurify } = window;

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
export function renderMarkdown(target, text) {
  const fragment = DOMPurify.sanitize(parser.parse(text), PURIFY_CONFIG);
  decorateCodeBlocks(fragment);
  target.replaceChildren(fragment);
}

function decorateCodeBlocks(fragment) {
  for (const pre of fragment.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const languageClass = [...(code?.classList ?? [])].find((name) => name.startsWith("language-"));
    const language = languageClass ? languageClass.slice("language-".length) : "code";
    const copy = iconButton("copy", "Copy code", { className: "code-copy", "data-testid": "copy-code" });
    copy.addEventListener("click", () => copyWithFeedback(copy, pre.textContent));
    const block = el("div", { className: "code-block" });
    pre.replaceWith(block);
    block.append(el("div", { className: "code-header" }, el("span", { text: language }), copy), pre);
  }
}
