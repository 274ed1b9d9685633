// The arena: one question, two anonymous replies streaming side by side, a vote.
// Frames: arena -> message, conversation, arena_match, reply_started ×2, token…,
// reply_done ×2; arena_vote -> arena_voted (names the versions). docs/protocol.md.
// Staff may choose the two versions (any status); the arena shuffles the sides.

import { renderMarkdown } from "./markdown.js";
import { ChatSocket } from "./socket.js";
import { announce, readConfig } from "./staff-api.js";

const config = readConfig();
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const state = { match: null, sides: {}, text: {}, done: new Set(), voted: false };

const socket = new ChatSocket(config.socketPath, { onFrame, onStatus });
socket.connect();

function onStatus(status) {
  const labels = { connecting: "Connecting…", closed: "Reconnecting…", unauthenticated: "Log in again to use the arena." };
  $("arena-ask").disabled = status !== "open";
  $("arena-status").textContent = labels[status] ?? "";
}

function sideOf(messageId) {
  return Object.keys(state.sides).find((side) => state.sides[side] === messageId);
}

const HANDLERS = {
  arena_match({ match }) {
    state.match = match.id;
    state.sides = { a: match.a, b: match.b };
    state.text = { a: "", b: "" };
    state.done = new Set();
    state.voted = false;
    for (const side of ["a", "b"]) {
      $(`arena-reply-${side}`).replaceChildren();
      $(`arena-version-${side}`).textContent = "";
      $(`arena-side-${side}`).removeAttribute("data-winner");
    }
    $("arena-unavailable").hidden = true;
    $("arena-sides").hidden = false;
    $("arena-votes").hidden = true;
    $("arena-stop").hidden = false;
    $("arena-status").textContent = "Both versions are writing…";
  },
  token({ message, text }) {
    const side = sideOf(message);
    if (!side) return;
    state.text[side] += text;
    renderMarkdown($(`arena-reply-${side}`), state.text[side]);
  },
  reply_done({ message }) {
    const side = sideOf(message.id);
    if (!side) return;
    state.text[side] = message.content;
    renderMarkdown($(`arena-reply-${side}`), message.content || "(empty reply)");
    state.done.add(side);
    if (state.done.size === 2) {
      $("arena-stop").hidden = true;
      $("arena-votes").hidden = false;
      $("arena-status").textContent = "Which reply is better?";
      $("vote-a").focus();
    }
  },
  arena_voted({ match, pair }) {
    state.voted = true;
    $("arena-votes").hidden = true;
    for (const side of ["a", "b"]) {
      $(`arena-version-${side}`).textContent = `Written by ${match.versions[side]}`;
      if (match.winner === side) $(`arena-side-${side}`).dataset.winner = "true";
    }
    const saved = pair ? " It was saved as a preference pair for review." : "";
    $("arena-status").textContent = `Thanks, your vote counts.${saved}`;
    announce("Vote recorded");
    refreshLeaderboard();
  },
  error({ message, code }) {
    if (code === "arena_unavailable") {
      // Not a passing status: what to do, where it is seen.
      $("arena-unavailable").textContent = message;
      $("arena-unavailable").hidden = false;
      $("arena-status").textContent = "";
      return;
    }
    $("arena-status").textContent = message;
    if (code !== "not_running") $("arena-stop").hidden = true;
  },
};

function onFrame(frame) {
  HANDLERS[frame.type]?.(frame);
}

async function refreshLeaderboard() {
  // The server renders the table (one template for script and no script).
  const response = await fetch(location.pathname, { headers: { Accept: "text/html" } });
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  const fresh = page.querySelector('[data-testid="leaderboard-box"]');
  if (fresh) $("leaderboard-box").replaceChildren(...fresh.childNodes);
}

$("arena-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const content = $("arena-prompt").value;
  if (!content.trim()) return;
  const frame = { type: "arena", content };
  const chosen = ["a", "b"].map((side) => $(`arena-version-choice-${side}`)?.value ?? "");
  if (chosen.some(Boolean)) {
    if (!chosen.every(Boolean)) {
      $("arena-status").textContent = "Choose both versions to compare, or neither for the arena's pick.";
      return;
    }
    frame.versions = chosen.map(Number);
  }
  if (socket.send(frame)) $("arena-status").textContent = "Sending…";
});

$("arena-prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("arena-form").requestSubmit();
  }
});

$("arena-stop").addEventListener("click", () => socket.send({ type: "stop" }));

for (const button of document.querySelectorAll("[data-winner]")) {
  button.addEventListener("click", () => {
    if (state.match !== null && !state.voted) {
      socket.send({ type: "arena_vote", match: state.match, winner: button.dataset.winner });
    }
  });
}
