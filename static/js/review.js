// The review queue's focus view: one rating at a time, decided by keyboard.
// Keys: A approve, X exclude, J / → next, K / ← previous, U undo.
// Previous and next walk this visit's history; past its end, next asks the
// server for the following pending rating. Undo is the server's: it reverts
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
  renderMeta(item);
  renderContext(item.context);
  renderSources(item.sources ?? []);
  renderReplies(item);
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

function renderMeta(item) {
  const thumb = el("span", { className: `thumb-label ${item.value}`, "data-testid": "review-thumb" },
    icon("thumb"), el("span", { text: item.value === "up" ? "Thumbs up" : "Thumbs down" }));
  const reasons = el("ul", { className: "reason-labels", "data-testid": "review-reasons", "aria-label": "Reasons" },
    ...item.reasons.map((reason) => el("li", { text: reason.label })));
  const rater = item.rater;
  const trust = el("span", {
    className: `trust ${rater.trusted ? "trusted" : ""}`, "data-testid": "review-trust",
    text: rater.trusted ? "Trusted rater" : "Not marked trusted",
  });
  const history = `${rater.total} rating${rater.total === 1 ? "" : "s"}, ${rater.approved} approved, ${rater.excluded} excluded`;
  const status = el("span", {
    className: `status-badge ${item.status}`, "data-testid": "review-status", text: STATUS_LABELS[item.status],
  });
  const comment = item.comment
    ? el("blockquote", { className: "review-comment", "data-testid": "review-comment", text: item.comment })
    : el("p", { className: "muted", text: "No comment." });
  $("review-meta").replaceChildren(
    el("div", { className: "meta-line" }, thumb, status,
      el("span", { className: "muted", text: `${item.model_version || "unknown version"} · ${new Date(item.created_at).toLocaleString()}` })),
    item.reasons.length ? reasons : el("p", { className: "muted", text: "No reasons given." }),
    comment,
    el("p", { className: "rater" }, el("strong", { text: rater.name }), " ", trust, el("span", { className: "muted", text: ` · ${history}` })),
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

function replyPane(title, content, testId, note) {
  const body = el("div", { className: "turn-body" });
  renderMarkdown(body, content || "(empty reply)");
  return el("article", { className: "reply-pane", "data-testid": testId },
    el("h3", { text: title }), note ? el("p", { className: "muted", text: note }) : "", body);
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
    panes.push(replyPane("Sibling reply", sibling.content, "review-sibling", notes.join("; ")));
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

async function loadNext(afterId) {
  const url = withQuery(`${config.api}next${afterId ? `?after=${afterId}` : ""}`);
  const answer = await request("GET", url);
  if (answer.item) {
    state.history = state.history.slice(0, state.index + 1);
    state.history.push(answer.item.id);
    state.index = state.history.length - 1;
  }
  show(answer);
  return answer;
}

async function loadAt(index) {
  state.index = index;
  show(await request("GET", withQuery(`${config.api}ratings/${state.history[index]}`)));
}

async function decide(status) {
  const id = current();
  if (id === null) return;
  await request("POST", withQuery(`${config.api}ratings/${id}`), { status });
  announce(`${status === "approved" ? "Approved" : "Excluded"} rating ${id}`);
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
    else announce("This is the first rating of this visit.");
  },
  undo: async () => {
    const answer = await request("POST", withQuery(`${config.api}undo`));
    const id = answer.item.id;
    const known = state.history.indexOf(id);
    if (known >= 0) state.index = known;
    else {
      state.history.splice(state.index + 1, 0, id);
      state.index += 1;
    }
    show(answer);
    announce(`Undone: rating ${id} is ${STATUS_LABELS[answer.item.status].toLowerCase()} again`);
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

// Opened on one rating (?rating=ID, e.g. from the admin), or on the first pending one.
ACTIONS.start = () => (config.start ? loadAt(0) : loadNext(null));

$("bulk-link").href = config.bulkUrl;
$("filter-value").value = config.filter.value;
$("filter-version").value = config.filter.model_version;
if (config.start) state.history = [Number(config.start)];
run("start");
