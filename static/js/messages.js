// The message list: one branch of the conversation tree, kept in the DOM by id
// so that streaming only touches the reply being written.

import { buildSourcesBlock, linkCitations, renderSources, sourcesKey } from "./citations.js";
import { copyWithFeedback, el, iconButton, setText } from "./dom.js";
import { FeedbackControls } from "./feedback.js";
import { renderMarkdown } from "./markdown.js";
import { isWritten } from "./tree.js";

const STATE_LABELS = { streaming: "Writing…", stopped: "Stopped", failed: "Failed" };
const NEAR_BOTTOM_PX = 96;

export class MessageListView {
  // actions: {regenerate(message), showSibling(message, step), rate(…), prefer(message),
  // write(message, content), openSource(source, trigger)}
  // feedbackConfig: see FeedbackControls. showDetails: replies open with their
  // details (model version, token figures) shown, as staff see them.
  constructor(list, scroller, actions, feedbackConfig, { showDetails = false } = {}) {
    this.list = list;
    this.scroller = scroller;
    this.actions = actions;
    this.feedbackConfig = feedbackConfig;
    this.showDetails = showDetails;
    this.elements = new Map(); // message id -> element
  }

  // branch: MessageTree.branch(); busy: a reply is running or being requested.
  render(branch, { busy, streaming, forceScroll = false }) {
    const stickToBottom = forceScroll || this.isNearBottom();
    const shown = new Set();
    let previous = null;
    branch.forEach((entry, position) => {
      const element = this.elementFor(entry.message);
      this.update(element, entry, { busy, last: position === branch.length - 1 });
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (expected !== element) this.list.insertBefore(element, expected);
      previous = element;
      shown.add(entry.message.id);
    });
    this.removeAllBut(shown);
    this.list.setAttribute("aria-busy", streaming ? "true" : "false");
    if (stickToBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  clear() {
    this.removeAllBut(new Set());
  }

  isNearBottom() {
    const { scrollHeight, scrollTop, clientHeight } = this.scroller;
    return scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
  }

  removeAllBut(keep) {
    for (const [id, element] of this.elements) {
      if (keep.has(id)) continue;
      element.remove();
      this.elements.delete(id);
    }
  }

  elementFor(message) {
    let element = this.elements.get(message.id);
    if (!element) {
      element = buildMessage(message, this.actions, this.feedbackConfig);
      if (element.parts.details) setDetailsOpen(element.parts, this.showDetails);
      this.elements.set(message.id, element);
    }
    return element;
  }

  update(element, entry, { busy, last }) {
    const { message, index, count } = entry;
    element.message = message;
    if (element.dataset.status !== message.status) element.dataset.status = message.status;
    updateContent(element, message, this.actions.openSource);
    if (element.parts.sources) updateSources(element, message, this.actions.openSource);
    const parts = element.parts;
    parts.error.hidden = !message.error;
    setText(parts.error, message.error);
    parts.siblings.hidden = count < 2;
    setText(parts.siblingIndex, `${index + 1}/${count}`);
    parts.previous.disabled = index === 0;
    parts.next.disabled = index === count - 1;
    setText(parts.state, STATE_LABELS[message.status] ?? "");
    parts.author.hidden = !isWritten(message);
    if (parts.details) updateDetails(parts, message);
    parts.copy.hidden = message.status === "streaming" || !message.content;
    // A reply can be regenerated; a user message left without one can be retried.
    const canRetry = message.role === "assistant" ? message.status !== "streaming" : last && !busy;
    parts.regenerate.hidden = !canRetry;
    parts.regenerate.disabled = busy;
    element.feedback?.update(entry);
  }
}

function buildMessage(message, actions, feedbackConfig) {
  const isReply = message.role === "assistant";
  const parts = {
    content: el("div", {
      className: isReply ? "message-content markdown" : "message-content",
      "data-testid": "message-content",
    }),
    error: el("p", { className: "message-error", "data-testid": "message-error", hidden: true }),
    previous: iconButton("previous", "Previous version", { "data-testid": "sibling-prev" }),
    siblingIndex: el("span", { className: "sibling-index", "data-testid": "sibling-index" }),
    next: iconButton("next", "Next version", { "data-testid": "sibling-next" }),
    state: el("span", { className: "message-state", "data-testid": "message-state" }),
    // A reply the user wrote under a thumbs-down is labelled so, never taken for the model's.
    author: el("span", { className: "written-badge", "data-testid": "written-badge", text: "Written by you", hidden: true }),
    copy: iconButton("copy", isReply ? "Copy reply" : "Copy message", { "data-testid": "copy-message" }),
    regenerate: iconButton("regenerate", isReply ? "Regenerate reply" : "Retry: write a reply", {
      "data-testid": "regenerate",
    }),
  };
  parts.siblings = el("div", { className: "siblings", role: "group", "aria-label": "Versions" },
    parts.previous, parts.siblingIndex, parts.next);
  if (isReply) {
    addDetails(parts, message.id);
    parts.sources = buildSourcesBlock(message.id);
  }
  const written = isWritten(message);
  const element = el("article", {
    className: `message message-${message.role}${written ? " message-written" : ""}`,
    "data-testid": "message",
    "data-role": message.role,
    "data-message-id": message.id,
    "data-written-by": message.written_by ?? "",
    "aria-label": written ? "Reply written by you" : isReply ? "Reply" : "You said",
  });
  element.parts = parts;
  wireActions(element, parts, actions);
  const feedback = isReply ? new FeedbackControls(actions, feedbackConfig) : null;
  element.feedback = feedback;
  const bubble = el("div", { className: "message-bubble" }, parts.content, parts.error);
  // One line, at any width: what could make it wrap lives on the lines below
  // (details, "This one is better", the feedback form).
  const footer = el("div", { className: "message-footer" }, parts.siblings, parts.author, parts.state,
    el("span", { className: "message-actions" }, parts.copy, parts.regenerate, parts.detailsToggle ?? "",
      feedback?.thumbGroup ?? ""));
  const avatar = isReply ? el("div", { className: "avatar brand-mark", "aria-hidden": "true" }) : "";
  element.append(avatar, el("div", { className: "message-body" }, bubble, parts.sources ?? "", footer,
    parts.details ?? "",
    feedback?.slot ?? ""));
  return element;
}

// A reply's details: the model version that wrote it and its token figures,
// behind a toggle so that every reply does not carry them.
function addDetails(parts, messageId) {
  parts.model = el("span", { className: "message-model", "data-testid": "message-model" });
  parts.stats = el("span", { className: "message-stats", "data-testid": "message-stats" });
  parts.details = el("p", {
    className: "message-details", id: `message-details-${messageId}`, "data-testid": "message-details",
  }, parts.model, parts.stats);
  parts.detailsToggle = iconButton("info", "Details", {
    className: "details-toggle", "data-testid": "details-toggle", "aria-controls": parts.details.id,
  });
  parts.detailsToggle.addEventListener("click", () => {
    setDetailsOpen(parts, parts.detailsToggle.getAttribute("aria-expanded") !== "true");
  });
}

function setDetailsOpen(parts, open) {
  parts.detailsToggle.setAttribute("aria-expanded", String(open));
  parts.detailsToggle.title = open ? "Hide details" : "Details: model version and speed";
  showDetails(parts);
}

function updateDetails(parts, message) {
  setText(parts.model, message.status === "streaming" ? "" : message.model_version);
  setText(parts.stats, formatStats(message));
  showDetails(parts);
}

function showDetails(parts) {
  const empty = !parts.model.textContent && !parts.stats.textContent;
  parts.detailsToggle.hidden = empty;
  parts.details.hidden = empty || parts.detailsToggle.getAttribute("aria-expanded") !== "true";
}

function wireActions(element, parts, actions) {
  parts.previous.addEventListener("click", () => actions.showSibling(element.message, -1));
  parts.next.addEventListener("click", () => actions.showSibling(element.message, 1));
  parts.regenerate.addEventListener("click", () => actions.regenerate(element.message));
  parts.copy.addEventListener("click", () => copyWithFeedback(parts.copy, element.message.content));
}

// Re-render only when the text (or whether it streams, or its sources) changed.
// The user's words are only ever text. Citation markers become buttons after
// the Markdown is sanitised, on the DOM it produced.
function updateContent(element, message, openSource) {
  const streaming = message.status === "streaming";
  const sources = sourcesKey(message.sources);
  if (element.renderedText === message.content && element.renderedStreaming === streaming
    && element.renderedSources === sources) return;
  element.renderedText = message.content;
  element.renderedStreaming = streaming;
  element.renderedSources = sources;
  if (message.role !== "assistant") {
    element.parts.content.textContent = message.content;
    return;
  }
  renderMarkdown(element.parts.content, message.content, { streaming });
  linkCitations(element.parts.content, message.sources, openSource);
}

// The numbered list under a grounded reply; rebuilt only when a source or its
// "cited" mark changes (the sources frame, then reply_done).
function updateSources(element, message, openSource) {
  const key = `${sourcesKey(message.sources)}${message.unmatched ? " unmatched" : ""}`;
  if (element.shownSources === key) return;
  element.shownSources = key;
  renderSources(element.parts.sources, message.sources, openSource, { unmatched: message.unmatched });
}

export function formatStats(message) {
  const stats = message.stats ?? {};
  if (message.status === "streaming" || !stats.completion_tokens) return "";
  const parts = [`${stats.completion_tokens} tokens`];
  if (stats.tokens_per_second) parts.push(`${stats.tokens_per_second.toFixed(1)} tok/s`);
  if (stats.time_to_first_token_ms != null) {
    parts.push(`first token ${Math.round(stats.time_to_first_token_ms)} ms`);
  }
  return parts.join(" · ");
}
