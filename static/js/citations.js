// A grounded reply's sources (docs/protocol.md, "sources"): the numbered list
// under it, its [1] / [1, 3] markers turned into buttons, and the dialog that
// shows a cited passage. Markers are found in the DOM that markdown.js built
// and sanitised, as text nodes: nothing the model wrote is ever parsed as HTML.

import { el, setText } from "./dom.js";
import { documentsApi } from "./documents.js";
import { renderMarkdown } from "./markdown.js";

const MARKERS = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;
const HAS_MARKER = /\[\d{1,3}(?:\s*,\s*\d{1,3})*\]/;

// What a source list shows, so that it is rebuilt only when that changes.
export const sourcesKey = (sources) => JSON.stringify((sources ?? []).map((source) => [source.number, source.cited]));

const HEADING_JOIN = " > ";

// "page 3", a heading path, or nothing: where in its file a passage is, in full.
export function whereOf(source) {
  if (source.heading) return source.heading;
  return source.page != null ? `page ${source.page}` : "";
}

// What tells each source from the others under one reply, by number. Heading
// paths start with the document's top heading ("Isle of Carrowmere > Fares"):
// the steps every source of the same file shares are left out, so two entries
// read "Winter sailings" and "Fares", not the same cut-off title. A lone
// source drops its file's top heading when it has a deeper one.
export function distinctWhere(sources) {
  const byFile = new Map();
  for (const source of sources) {
    if (!byFile.has(source.filename)) byFile.set(source.filename, []);
    byFile.get(source.filename).push(source);
  }
  const labels = new Map();
  for (const group of byFile.values()) {
    const paths = group.map((source) => (source.heading ? source.heading.split(HEADING_JOIN) : []));
    const shared = group.length > 1 ? sharedSteps(paths) : 1;
    group.forEach((source, index) => {
      const path = paths[index];
      const rest = path.slice(Math.min(shared, Math.max(path.length - 1, 0)));
      const page = source.page != null ? `page ${source.page}` : "";
      labels.set(source.number, rest.join(HEADING_JOIN) || page);
    });
  }
  return labels;
}

function sharedSteps(paths) {
  let count = 0;
  while (paths.every((path) => path.length > count && path[count] === paths[0][count])) count += 1;
  return count;
}

// The full "file: where" a source's tooltip and dialog name.
const fullName = (source) => [source.filename, whereOf(source)].filter(Boolean).join(": ");

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
// `unmatched`: the documents were searched and no passage matched; the block
// says so, since the reply then comes from the model alone.
export function renderSources(block, sources, open, { unmatched = false } = {}) {
  block.dataset.unmatched = String(!sources?.length && unmatched);
  block.hidden = !sources?.length && !unmatched;
  if (!sources?.length) {
    setText(block.parts.title, unmatched ? "No passage matched" : "Sources");
    return block.parts.list.replaceChildren(...(unmatched ? [unmatchedNote()] : []));
  }
  const finished = sources.some((source) => source.cited !== undefined);
  const cited = sources.filter((source) => source.cited).length;
  setText(block.parts.title, finished ? `Sources · ${cited} of ${sources.length} cited` : "Sources");
  const labels = distinctWhere(sources);
  block.parts.list.replaceChildren(...sources.map((source) => sourceItem(source, labels.get(source.number), open)));
}

function unmatchedNote() {
  return el("li", {
    className: "sources-unmatched", "data-testid": "sources-unmatched",
    text: "Your documents were searched and no passage matched this message, so this reply does not come from them. Check it elsewhere.",
  });
}

function sourceItem(source, where, open) {
  const button = el("button", {
    type: "button", className: "source-link", "data-testid": "source-open", title: fullName(source),
  },
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
    showPassage(this.parts.text, source.text);
    if (!this.dialog.open) this.dialog.showModal();
    this.dialog.scrollTop = 0;
    this.check(source, this.opened);
  }

  async check(source, opened) {
    try {
      const passage = await documentsApi.passage(source.chunk);
      if (opened === this.opened && passage.text && passage.text !== source.text) {
        showPassage(this.parts.text, passage.text);
      }
    } catch (error) {
      if (opened === this.opened && error.status === 404) this.parts.deleted.hidden = false;
    }
  }
}

const capitalise = (text) => text.charAt(0).toUpperCase() + text.slice(1);

// A passage as replies are shown: Markdown rendered and sanitised (markdown.js),
// its headings made plain bold lines so they do not outrank the dialog's title.
function showPassage(target, text) {
  renderMarkdown(target, text);
  for (const heading of target.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    heading.replaceWith(el("p", { className: "passage-heading" }, el("strong", {}, ...heading.childNodes)));
  }
}
