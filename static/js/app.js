// LoopChat in the browser: wires the sidebar, the message list, the composer,
// the settings dialog and the documents panel to the JSON API and the
// websocket (docs/protocol.md).

import { api } from "./api.js";
import { setText } from "./dom.js";
import { PassageDialog } from "./citations.js";
import { Composer } from "./composer.js";
import { DocumentsPanel } from "./documents-panel.js";
import { FeedbackRequests } from "./feedback-requests.js";
import { MessageListView } from "./messages.js";
import { Notices } from "./notices.js";
import { SettingsDialog } from "./settings.js";
import { Sidebar, conversationPath, titleOf } from "./sidebar.js";
import { ChatSocket } from "./socket.js";
import { MessageTree } from "./tree.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

class ChatApp {
  constructor(config) {
    this.config = config;
    this.conversations = new Map(); // id -> conversation object
    this.trees = new Map(); // conversation id -> MessageTree
    this.replyConversation = new Map(); // reply id -> conversation id, for token frames
    this.currentId = null;
    this.pending = null; // {nonce, kind, content?} sent, not yet answered
    this.running = null; // {replyId, conversationId} streaming on this socket
    this.engine = { state: "unknown", detail: "" };
    this.connection = "connecting";
    this.connectedBefore = false;
    this.renderQueued = false;
    this.forceScroll = false;
    this.createViews();
    this.socket = new ChatSocket("/ws/chat/", {
      onFrame: (frame) => this.receive(frame),
      onStatus: (status) => this.connectionChanged(status),
    });
    this.feedback = new FeedbackRequests(this.socket, {
      treeOf: (id) => this.tree(id),
      changed: () => this.render(),
      announce: (text) => announce($("announcer"), text),
      notify: (text) => this.notices.show(text),
    });
  }

  createViews() {
    this.sidebar = new Sidebar(document, {
      open: (id) => this.open(id, { push: true }),
      create: () => this.createConversation(),
      rename: (id, title) => this.rename(id, title),
      remove: (id) => this.remove(id),
    });
    this.messages = new MessageListView($("message-list"), $("message-scroller"), {
      regenerate: (message) => this.regenerate(message),
      showSibling: (message, step) => this.showSibling(message, step),
      rate: (message, value, details) => this.feedback.rate(message, value, details),
      prefer: (message) => this.feedback.prefer(message),
      write: (message, content) => this.feedback.write(message, content),
      openSource: (source, trigger) => this.passage.open(source, trigger),
    }, { ...this.config.feedback, maxReplyChars: this.config.maxMessageChars }, { showDetails: this.config.isStaff });
    this.passage = new PassageDialog($("passage-dialog"));
    this.documents = new DocumentsPanel(document, {
      ensureConversation: () => this.ensureConversation(),
      setUseLibrary: (id, on) => this.saveUseLibrary(id, on),
      announce: (text) => announce($("announcer"), text),
    });
    this.composer = new Composer($("composer-form"), {
      send: (text) => this.send(text),
      stop: () => this.socket.send({ type: "stop" }),
    });
    this.settings = new SettingsDialog($("settings-dialog"), (changes) => this.saveSettings(changes));
    this.notices = new Notices($("notices"));
    // In an empty chat the dialog shows the defaults; saving starts the conversation.
    $("settings-button").addEventListener("click", () => {
      this.settings.open(this.current ?? this.config.conversationDefaults);
    });
    window.addEventListener("popstate", () => this.followLocation());
  }

  async start() {
    this.socket.connect();
    this.render();
    await this.loadConversations();
    if (this.config.conversationId) await this.open(this.config.conversationId, { push: false });
    this.composer.focus();
  }

  get current() {
    return this.conversations.get(this.currentId) ?? null;
  }

  tree(conversationId) {
    if (!this.trees.has(conversationId)) this.trees.set(conversationId, new MessageTree());
    return this.trees.get(conversationId);
  }

  // -- conversations (HTTP) -------------------------------------------------------

  async loadConversations() {
    try {
      for (const conversation of await api.listConversations()) this.remember(conversation);
    } catch (error) {
      this.notices.show(error.message);
    }
    this.render();
  }

  remember(conversation) {
    this.conversations.set(conversation.id, { ...this.conversations.get(conversation.id), ...conversation });
    this.render();
  }

  async open(id, { push }) {
    this.currentId = id;
    if (push && location.pathname !== conversationPath(id)) history.pushState({}, "", conversationPath(id));
    this.forceScroll = true;
    this.render();
    try {
      const { conversation, messages, ratings, preferences, written } = await api.getConversation(id);
      this.remember(conversation);
      const tree = this.tree(id);
      for (const message of messages) tree.mergeStored(message);
      tree.setFeedback({ ratings, preferences, written });
    } catch (error) {
      this.notices.show(error.message);
      if (error.status === 404) this.goHome({ push: true });
    }
    this.forceScroll = true;
    this.render();
  }

  goHome({ push }) {
    this.currentId = null;
    if (push && location.pathname !== "/") history.pushState({}, "", "/");
    this.render();
    this.composer.focus();
  }

  followLocation() {
    const match = location.pathname.match(/^\/c\/(\d+)\/$/);
    if (match) this.open(Number(match[1]), { push: false });
    else this.goHome({ push: false });
  }

  // A new, empty conversation, unless the open one is still empty.
  async createConversation() {
    if (this.current && this.tree(this.currentId).size === 0) return this.composer.focus();
    try {
      const conversation = await api.createConversation();
      this.remember(conversation);
      await this.open(conversation.id, { push: true });
      this.composer.focus();
    } catch (error) {
      this.notices.show(error.message);
    }
  }

  async rename(id, title) {
    try {
      this.remember(await api.updateConversation(id, { title }));
    } catch (error) {
      this.notices.show(error.fields?.title ?? error.message);
    }
  }

  async remove(id) {
    const title = titleOf(this.conversations.get(id));
    if (!window.confirm(`Delete “${title}”? This cannot be undone.`)) return;
    try {
      await api.deleteConversation(id);
    } catch (error) {
      if (error.status !== 404) return this.notices.show(error.message);
    }
    this.conversations.delete(id);
    this.trees.delete(id);
    if (this.currentId === id) this.goHome({ push: true });
    this.render();
  }

  async saveSettings(changes) {
    if (this.currentId === null) await this.startConversation();
    const conversation = await api.updateConversation(this.currentId, changes);
    this.remember(conversation);
    this.notices.show("Settings saved.", { kind: "info", timeout: 2500 });
  }

  // -- generation (websocket) -----------------------------------------------------

  // Resolves false when nothing was sent, so the composer keeps the text.
  async send(content) {
    if (content.length > this.config.maxMessageChars) {
      this.notices.show(`Messages can be at most ${this.config.maxMessageChars} characters.`);
      return false;
    }
    this.pending = { nonce: newNonce(), kind: "send", content };
    this.render();
    if (this.currentId === null && !(await this.createForFirstMessage())) return false;
    const frame = {
      type: "send", conversation: this.currentId, content,
      parent: this.tree(this.currentId).lastReplyId(), nonce: this.pending.nonce,
    };
    return this.request(frame);
  }

  async createForFirstMessage() {
    try {
      await this.startConversation();
      return true;
    } catch (error) {
      this.pending = null;
      this.notices.show(error.message);
      this.render();
      return false;
    }
  }

  // Create the conversation an empty chat stands for, and make it the open one.
  async startConversation() {
    const conversation = await api.createConversation();
    this.remember(conversation);
    this.currentId = conversation.id;
    history.pushState({}, "", conversationPath(conversation.id));
  }

  // The open conversation's id; in an empty chat, the one it starts (for uploads).
  // No render in between: the documents panel adopts the id before it shows it.
  async ensureConversation() {
    if (this.currentId === null) await this.startConversation();
    return this.currentId;
  }

  async saveUseLibrary(id, on) {
    this.remember(await api.updateConversation(id, { use_library: on }));
  }

  regenerate(message) {
    if (this.busy) return;
    this.pending = { nonce: newNonce(), kind: "regenerate" };
    this.request({ type: "regenerate", message: message.id, nonce: this.pending.nonce });
  }

  request(frame) {
    const sent = this.socket.send(frame);
    if (!sent) {
      this.pending = null;
      this.notices.show("Not connected to the server. Reconnecting…");
    }
    this.forceScroll = sent;
    this.render();
    return sent;
  }

  showSibling(message, step) {
    const tree = this.tree(message.conversation);
    const siblings = tree.siblings(message);
    const target = siblings[siblings.findIndex((item) => item.id === message.id) + step];
    if (!target) return;
    tree.choose(target);
    this.render();
  }

  // Move a conversation up the list when something happens in it (server times).
  touch(conversationId, when) {
    const conversation = this.conversations.get(conversationId);
    if (conversation && when > conversation.updated_at) conversation.updated_at = when;
  }

  get busy() {
    return this.pending !== null || this.running !== null;
  }

  // -- frames ---------------------------------------------------------------------

  receive(frame) {
    const handler = FRAME_HANDLERS[frame.type];
    if (handler) handler.call(this, frame);
    this.scheduleRender();
  }

  connectionChanged(status) {
    if (status === "unauthenticated") {
      window.location.assign(`${this.config.loginUrl}?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    const reconnected = status === "open" && this.connectedBefore;
    if (status === "open") this.connectedBefore = true;
    this.connection = status;
    if (status === "closed") {
      // The server stops a reply whose socket closed; reload to see how it ended.
      this.pending = null;
      this.running = null;
      this.feedback.abandonAll();
    }
    if (reconnected) this.catchUp();
    this.render();
  }

  // After a reconnect: titles and replies may have changed while we were away.
  catchUp() {
    this.loadConversations();
    if (this.currentId !== null) this.open(this.currentId, { push: false });
  }

  // -- rendering ------------------------------------------------------------------

  // Streaming renders at most once per animation frame, however fast tokens come.
  scheduleRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  render() {
    const current = this.current;
    const branch = current ? this.tree(current.id).branch() : [];
    const streamingHere = this.running !== null && this.running.conversationId === this.currentId;
    this.messages.render(branch, { busy: this.busy, streaming: streamingHere, forceScroll: this.forceScroll });
    this.forceScroll = false;
    this.sidebar.render(this.conversations.values(), this.currentId);
    this.documents.show(current);
    $("empty-state").hidden = branch.length > 0 || this.pending !== null;
    setText($("conversation-title"), titleOf(current));
    document.title = current ? `${titleOf(current)} · LoopChat` : "LoopChat";
    const canSend = this.socket.isOpen && !this.busy && this.engine.state !== "failed";
    this.composer.setState({ canSend, running: this.running !== null });
    this.renderStatus(streamingHere);
  }

  renderStatus(streamingHere) {
    const [state, text] = this.statusLine(streamingHere);
    const status = $("status");
    status.dataset.state = state;
    setText(status, text);
  }

  statusLine(streamingHere) {
    if (this.connection !== "open") {
      return ["offline", this.connection === "connecting" ? "Connecting…" : "Reconnecting…"];
    }
    if (this.engine.state === "loading") return ["loading", "Loading model…"];
    if (this.engine.state === "failed") {
      return ["failed", this.engine.detail ? `Model unavailable: ${this.engine.detail}` : "Model unavailable"];
    }
    if (streamingHere) return ["streaming", "Writing a reply…"];
    if (this.pending !== null) return ["sending", "Sending…"];
    return ["ready", ""];
  }
}

// One handler per server frame type; `this` is the ChatApp.
const FRAME_HANDLERS = {
  engine(frame) {
    this.engine = { state: frame.state, detail: frame.detail ?? "" };
  },
  conversation(frame) {
    this.remember(frame.conversation);
  },
  message(frame) {
    const message = frame.message;
    const tree = this.tree(message.conversation);
    tree.choose(tree.upsert(message));
    this.touch(message.conversation, message.created_at);
    if (message.conversation === this.currentId) this.forceScroll = true;
  },
  reply_started(frame) {
    const reply = frame.message;
    const tree = this.tree(reply.conversation);
    tree.choose(tree.upsert(reply));
    this.replyConversation.set(reply.id, reply.conversation);
    this.running = { replyId: reply.id, conversationId: reply.conversation };
    this.pending = null;
    if (reply.conversation === this.currentId) this.forceScroll = true;
  },
  // The passages a grounded reply is written from, before its first token; or,
  // with `matched: false`, word that the documents were searched and held nothing.
  sources(frame) {
    const conversationId = this.replyConversation.get(frame.message);
    const tree = conversationId === undefined ? null : this.tree(conversationId);
    const unmatched = frame.matched === false;
    if (tree?.get(frame.message)) tree.upsert({ id: frame.message, sources: frame.sources, unmatched });
  },
  token(frame) {
    const conversationId = this.replyConversation.get(frame.message);
    if (conversationId !== undefined) this.tree(conversationId).appendText(frame.message, frame.text);
  },
  reply_done(frame) {
    const reply = frame.message;
    this.tree(reply.conversation).upsert(reply);
    if (this.running?.replyId === reply.id) this.running = null;
    this.touch(reply.conversation, reply.created_at);
  },
  rating(frame) {
    this.feedback.rated(frame);
  },
  preference(frame) {
    this.feedback.preferred(frame);
  },
  written_reply(frame) {
    this.feedback.wrote(frame);
    if (frame.reply.conversation === this.currentId) this.forceScroll = true;
  },
  error(frame) {
    if (frame.code === "unauthenticated") return this.connectionChanged("unauthenticated");
    if (this.feedback.refused(frame)) return;
    const mine = this.pending !== null && frame.nonce === this.pending.nonce;
    if (mine && this.pending.kind === "send") this.composer.restore(this.pending.content);
    if (mine) this.pending = null;
    // A stop that crossed the reply's own end is not worth a notice.
    if (frame.code !== "not_running") this.notices.show(frame.message || "The server refused that.");
  },
};

// Say something to screen readers through a polite live region. Emptied first
// so that the same words twice ("Rated up" after a clear) are heard twice.
function announce(region, text) {
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

function newNonce() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

const config = JSON.parse(document.getElementById("client-config").textContent);
const app = new ChatApp(config);
app.start();
