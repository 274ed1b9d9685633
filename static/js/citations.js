// A grounded reply's sources (docs/protocol.md, "sources"): the numbered list
// under it, its [1] / [1, 3] markers turned into buttons, and the dialog that
// shows a cited passage. Markers are found in the DOM that markdown.js built
// and sanitised, as text nodes: nothing the model wrote is ever parsed as HTML.

import { el, setText } from "./dom.js";
import { documentsApi } from "./documents.js";

const MARKERS = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;
const HAS_MARKER = /\[\d{1,3}(?:\s*,\s*\d{1,3})*\]/;

// What a source list shows, so that it is rebuilt only when that changes.
export const sourcesKey = (sources) => JSON.stringify((sources ?? []).map((source) => [source.number, source.cited]));

// "page 3", a heading, or nothing: where in its file a passage is.
export function whereOf(source) {
  if (source.heading) return source.heading;
  return source.page != null ? `page ${source.page}` : "";
}

// The "Sources" block under a reply; fill it with renderSources().
export function buildSourcesBlock(messageId) {
  const titleId = `sources-title-${messageId}`;
  const title = el("p", { className: "sources-title", id: titleId, "data-testid": "sources-title", text: "Sources" });
  const list = el("ol", { className: "sources-list", "aria-labelledby": titleId });
  const block = el("div", { className: "message-sources", "data-testid": "sources", hidden: true }, title, list);
  block.parts = { title, list };
  return block;
}

// open(source, trigger) shows the passage. `cited` is missing while the reply
// streams; once it ends each source says whether the reply drew on it.
export function renderSources(block, sources, open) {
  block.hidden = !sources?.length;
  if (block.hidden) return block.parts.list.replaceChildren();
  const finished = sources.some((source) => source.cited !== undefined);
  const cited = sources.filter((source) => source.cited).length;
  setText(block.parts.title, finished ? `Sources · ${cited} of ${sources.length} cited` : "Sources");
  block.parts.list.replaceChildren(...sources.map((source) => sourceItem(source, open)));
}

function sourceItem(source, open) {
  const where = whereOf(source);
  const button = el("button", { type: "button", className: "source-link", "data-testid": "source-open" },
    el("span", { className: "source-number", text: `[${source.number}]` }),
    el("span", { className: "source-name", text: source.filename }),
    where ? el("span", { className: "source-where", text: where }) : "",
    source.cited ? el("span", { className: "source-cited", "data-testid": "source-cited", text: "Cited" }) : "");
  button.addEventListener("click", () => open(source, button));
  const cited = source.cited === undefined ? "unknown" : String(source.cited);
  return el("li", { className: "source", "data-testid": "source", "data-number": source.number, "data-cited": cited }, button);
}

// Turn "[1]" and "[1, 3]" in `root`'s text into buttons for sources that exist.
// Code, links and our own buttons are left alone.
export function linkCitations(root, sources, open) {
  if (!sources?.length) return;
  const byNumber = new Map(sources.map((source) => [source.number, source]));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (HAS_MARKER.test(node.data) && !node.parentElement?.closest("pre, code, a, button")
      ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT),
  });
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  for (const node of nodes) replaceMarkers(node, byNumber, open);
}

function replaceMarkers(node, byNumber, open) {
  const pieces = [];
  let last = 0;
  for (const match of node.data.matchAll(MARKERS)) {
    const numbers = match[1].split(",").map((number) => Number(number.trim()));
    if (!numbers.every((number) => byNumber.has(number))) continue;
    pieces.push(node.data.slice(last, match.index), markerGroup(numbers, byNumber, open));
    last = match.index + match[0].length;
  }
  if (!pieces.length) return;
  pieces.push(node.data.slice(last));
  node.replaceWith(...pieces.filter((piece) => piece !== ""));
}

function markerGroup(numbers, byNumber, open) {
  const group = el("span", { className: "citation" }, "[");
  numbers.forEach((number, position) => {
    const source = byNumber.get(number);
    const button = el("button", {
      type: "button", className: "citation-link", "data-testid": "citation-marker", "data-number": number,
      text: String(number), "aria-label": `Source ${number}: ${source.filename}`, title: source.filename,
    });
    button.addEventListener("click", () => open(source, button));
    group.append(position ? ", " : "", button);
  });
  group.append("]");
  return group;
}

// The passage a citation points to, in a modal dialog: focus moves into it,
// Esc closes it, and focus goes back to the citation that opened it. The text
// shown is the copy the reply saw; the server says whether the file still exists.
export class PassageDialog {
  constructor(dialog) {
    this.dialog = dialog;
    this.parts = {};
    for (const name of ["title", "where", "deleted", "text"]) {
      this.parts[name] = dialog.querySelector(`[data-testid="passage-${name}"]`);
    }
    this.trigger = null;
    this.opened = 0; // Which opening a passage answer belongs to.
    dialog.querySelector('[data-action="close"]').addEventListener("click", () => dialog.close());
    // A click on the backdrop lands on the dialog itself, outside its box.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) dialog.close();
    });
    dialog.addEventListener("close", () => this.trigger?.focus());
  }

  open(source, trigger) {
    this.trigger = trigger;
    this.opened += 1;
    setText(this.parts.title, `[${source.number}] ${source.filename}`);
    setText(this.parts.where, whereOf(source) ? capitalise(whereOf(source)) : "");
    this.parts.where.hidden = !whereOf(source);
    this.parts.deleted.hidden = true;
    setText(this.parts.text, source.text);
    if (!this.dialog.open) this.dialog.showModal();
    this.dialog.scrollTop = 0;
    this.check(source, this.opened);
  }

  async check(source, opened) {
    try {
      const passage = await documentsApi.passage(source.chunk);
      if (opened === this.opened && passage.text) setText(this.parts.text, passage.text);
    } catch (error) {
      if (opened === this.opened && error.status === 404) this.parts.deleted.hidden = false;
    }
  }
}

const capitalise = (text) => text.charAt(0).toUpperCase() + text.slice(1);
