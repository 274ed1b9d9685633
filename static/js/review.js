// The review queue's focus view: one rating or preference pair at a time,
// decided by keyboard. Keys: A approve, X exclude, J / → next, K / ← previous,
// U undo. Previous and next walk this visit's history; past its end, next asks
// the server for the following pending item. Undo is the server's: it reverts
// the reviewer's own last decision, even one made before a reload.

import { el, icon } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { request } from "./api.js";
import { announce, readConfig } from "./staff-api.js";

const config = readConfig();
const query = new URLSearchParams(
  Object.entries(config.filter).filter(([, value]) => value),
).toString();
const withQuery = (url) => (query ? `${url}${url.includes("?") ? "&" : "?"}${query}` : url);

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const ROLE_LABELS = { system: "System prompt", user: "User", assistant: "Assistant" };
const STATUS_LABELS = { pending: "Pending", approved: "Approved", excluded: "Excluded" };
const THUMB_WORDS = { up: "thumbs up", down: "thumbs down" };

// An item of the queue: {kind: "rating" | "pair", id}; its API address.
const refOf = (item) => ({ kind: item.kind, id: item.id });
const sameRef = (a, b) => a.kind === b.kind && a.id === b.id;
const itemUrl = (ref) => `${config.api}${ref.kind === "pair" ? "pairs" : "ratings"}/${ref.id}`;

const state = { history: [], index: -1, busy: false };

function current() {
  return state.history[state.index] ?? null;
}

function show(answer) {
  const { item } = answer;
  progress(answer);
  $("review-item").hidden = item === null;
  $("review-empty").hidden = item !== null;
  for (const button of document.querySelectorAll("[data-action]")) {
    const needsItem = button.dataset.action !== "undo";
    button.disabled = needsItem && item === null;
  }
  if (item === null) return;
  $("bulk-link").href = config.bulkUrls[item.kind];
  if (item.kind === "pair") {
    renderPairMeta(item);
  } else {
    renderMeta(item);
  }
  renderContext(item.context);
  renderSources(item.sources ?? []);
  if (item.kind === "pair") renderPair(item);
  else renderReplies(item);
}

function progress({ item, pending, position }) {
  let text;
  if (pending === 0) text = "0 pending";
  else if (position) text = `${position} of ${pending} pending`;
  else text = `${pending} pending`;
  if (item && item.status !== "pending") {
    text += ` · this one ${STATUS_LABELS[item.status].toLowerCase()} by ${item.reviewed_by}`;
  }
  $("review-progress").textContent = text;
}

// One convention for times on staff pages, the dashboard's: UTC, labelled.
function utcTime(iso) {
  const text = `${new Date(iso).toISOString().slice(0, 16).replace("T", " ")} UTC`;
  return el("time", { datetime: iso, "data-testid": "review-created", text });
}

function statusBadge(item) {
  return el("span", {
    className: `status-badge ${item.status}`, "data-testid": "review-status", text: STATUS_LABELS[item.status],
  });
}

function raterLine(rater) {
  const trust = el("span", {
    className: `trust ${rater.trusted ? "trusted" : ""}`, "data-testid": "review-trust",
    text: rater.trusted ? "Trusted rater" : "Not marked trusted",
  });
  const history = `${rater.total} rating${rater.total === 1 ? "" : "s"}, ${rater.approved} approved, ${rater.excluded} excluded`;
  return el("p", { className: "rater" }, el("strong", { text: rater.name }), " ", trust, el("span", { className: "muted", text: ` · ${history}` }));
}

// A pair: where it came from (a choice, two opposite thumbs, an arena vote, a
// reply the user wrote), its state, who gave it.
function renderPairMeta(item) {
  const source = el("span", { className: `pair-source ${item.source}`, "data-testid": "review-pair-source", text: item.source_label });
  $("review-meta").replaceChildren(
    el("div", { className: "meta-line" }, el("span", { className: "kind-label", text: "Preference pair" }), source, statusBadge(item),
      el("span", { className: "muted" }, utcTime(item.created_at))),
    raterLine(item.rater),
  );
}

function renderMeta(item) {
  const thumb = el("span", { className: `thumb-label ${item.value}`, "data-testid": "review-thumb" },
    icon("thumb"), el("span", { text: item.value === "up" ? "Thumbs up" : "Thumbs down" }));
  const reasons = el("ul", { className: "reason-labels", "data-testid": "review-reasons", "aria-label": "Reasons" },
    ...item.reasons.map((reason) => el("li", { text: reason.label })));
  const comment = item.comment
    ? el("blockquote", { className: "review-comment", "data-testid": "review-comment", text: item.comment })
    : el("p", { className: "muted", text: "No comment." });
  $("review-meta").replaceChildren(
    el("div", { className: "meta-line" }, thumb, statusBadge(item),
      el("span", { className: "muted" }, `${item.model_version || "unknown version"} · `, utcTime(item.created_at))),
    item.reasons.length ? reasons : el("p", { className: "muted", text: "No reasons given." }),
    comment,
    raterLine(item.rater),
  );
}

function renderContext(turns) {
  $("review-context").replaceChildren(...turns.map((turn) => {
    const body = el("div", { className: "turn-body" });
    renderMarkdown(body, turn.content);
    return el("li", { className: `turn ${turn.role}` },
      el("span", { className: "turn-role", text: ROLE_LABELS[turn.role] ?? turn.role }), body);
  }));
}

// The numbered passages a grounded reply saw: where each came from, and whether
// the reply cited it. Shown as plain text, exactly as the prompt held it.
function renderSources(sources) {
  $("review-sources-section").hidden = sources.length === 0;
  $("review-sources").replaceChildren(...sources.map((source) => {
    const where = [source.filename, source.page == null ? "" : `page ${source.page}`, source.heading]
      .filter(Boolean).join(", ");
    const cited = source.cited
      ? el("span", { className: "status-badge approved", "data-testid": "source-cited", text: "Cited" })
      : el("span", { className: "muted", text: "Not cited" });
    return el("li", { className: "turn source", "data-testid": "review-source", "data-cited": String(source.cited) },
      el("p", { className: "meta-line" }, el("strong", { text: `[${source.number}]` }), el("span", { text: where }), cited),
      el("div", { className: "turn-body", text: source.text }));
  }));
}

function replyPane(title, content, testId, note, className = "") {
  const body = el("div", { className: "turn-body" });
  renderMarkdown(body, content || "(empty reply)");
  return el("article", { className: `reply-pane ${className}`.trim(), "data-testid": testId },
    el("h3", { text: title }), note ? el("p", { className: "muted", text: note }) : "", body);
}

// Who wrote one side of a pair, and what the user said of it.
function sideNote(side) {
  // A reply the user wrote says so in its pane's title.
  const notes = side.written_by === "user" ? [] : [`by ${side.model_version || "an unknown version"}`];
  const rating = side.rating;
  if (rating) {
    const reasons = rating.reasons.map((reason) => reason.label).join(", ");
    notes.push(`rated ${THUMB_WORDS[rating.value]}${reasons ? `: ${reasons}` : ""}${rating.comment ? ` “${rating.comment}”` : ""}`);
  }
  return notes.join("; ");
}

// Both replies side by side, the chosen one first and marked.
function renderPair(item) {
  const chosenTitle = item.source === "written" ? "Chosen: written by the user" : "Chosen";
  const container = $("review-replies");
  container.classList.add("pair");
  container.replaceChildren(
    replyPane(`✓ ${chosenTitle}`, item.chosen.content, "review-chosen", sideNote(item.chosen), "chosen"),
    replyPane("Rejected", item.rejected.content, "review-rejected", sideNote(item.rejected), "rejected"),
  );
}

function renderReplies(item) {
  const panes = [replyPane(`Rated reply (${item.value === "up" ? "thumbs up" : "thumbs down"})`,
    item.reply.content, "review-reply")];
  const sibling = item.sibling;
  if (sibling) {
    const notes = [];
    if (sibling.value) notes.push(`the same user rated it ${sibling.value === "up" ? "thumbs up" : "thumbs down"}`);
    if (sibling.grounded !== (item.sources ?? []).length > 0) {
      notes.push(sibling.grounded ? "it saw sources the rated reply did not" : "it was written without the sources");
    }
    if (sibling.preferred) notes.push(sibling.preferred === "sibling" ? "they preferred this one" : "they preferred the rated reply");
    const title = sibling.written_by === "user" ? "Reply written by the user" : "Sibling reply";
    panes.push(replyPane(title, sibling.content, "review-sibling", notes.join("; ")));
  }
  const container = $("review-replies");
  container.classList.toggle("pair", Boolean(sibling));
  container.replaceChildren(...panes);
}

async function run(action) {
  if (state.busy) return;
  state.busy = true;
  try {
    await ACTIONS[action]();
  } catch (error) {
    announce(error.message);
    $("review-progress").textContent = error.message;
  } finally {
    state.busy = false;
  }
}

async function loadNext(after) {
  const url = withQuery(`${config.api}next${after ? `?after=${after.kind}:${after.id}` : ""}`);
  const answer = await request("GET", url);
  if (answer.item) {
    state.history = state.history.slice(0, state.index + 1);
    state.history.push(refOf(answer.item));
    state.index = state.history.length - 1;
  }
  show(answer);
  return answer;
}

async function loadAt(index) {
  state.index = index;
  show(await request("GET", withQuery(itemUrl(state.history[index]))));
}

async function decide(status) {
  const ref = current();
  if (ref === null) return;
  await request("POST", withQuery(itemUrl(ref)), { status });
  announce(`${status === "approved" ? "Approved" : "Excluded"} ${ref.kind} ${ref.id}`);
  await forward();
}

async function forward() {
  if (state.index < state.history.length - 1) await loadAt(state.index + 1);
  else await loadNext(current());
}

const ACTIONS = {
  approve: () => decide("approved"),
  exclude: () => decide("excluded"),
  next: forward,
  previous: async () => {
    if (state.index > 0) await loadAt(state.index - 1);
    else announce("This is the first item of this visit.");
  },
  undo: async () => {
    const answer = await request("POST", withQuery(`${config.api}undo`));
    const ref = refOf(answer.item);
    const known = state.history.findIndex((item) => sameRef(item, ref));
    if (known >= 0) state.index = known;
    else {
      state.history.splice(state.index + 1, 0, ref);
      state.index += 1;
    }
    show(answer);
    announce(`Undone: ${ref.kind} ${ref.id} is ${STATUS_LABELS[answer.item.status].toLowerCase()} again`);
  },
};

const KEYS = {
  a: "approve", x: "exclude", j: "next", ArrowRight: "next", k: "previous", ArrowLeft: "previous", u: "undo",
};

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.metaKey || event.target.closest("input, select, textarea")) return;
  const undo = event.ctrlKey && event.key === "z";
  if (event.ctrlKey && !undo) return;
  const action = undo ? "undo" : KEYS[event.key.length === 1 ? event.key.toLowerCase() : event.key];
  if (!action) return;
  event.preventDefault();
  run(action);
});

for (const button of document.querySelectorAll("[data-action]")) {
  button.addEventListener("click", () => run(button.dataset.action));
}

// Opened on one item (?rating=ID or ?pair=ID, e.g. from the admin), or on the first pending one.
ACTIONS.start = () => (config.start ? loadAt(0) : loadNext(null));

$("bulk-link").href = config.bulkUrls.rating;
$("filter-kind").value = config.filter.kind;
$("filter-value").value = config.filter.value;
$("filter-source").value = config.filter.source;
$("filter-version").value = config.filter.model_version;
// The filters stay open on wide screens; on a phone they fold away so the reply
// under review fits the first screen (the summary says how many are on).
const filtersOn = Object.values(config.filter).filter(Boolean).length;
if (filtersOn) $("review-filters-summary").textContent = `Filters (${filtersOn} on)`;
$("review-filters-box").open = window.matchMedia("(min-width: 601px)").matches;
if (config.start) state.history = [config.start];
run("start");
