// The conversation list: newest first, the open one highlighted, inline rename,
// delete. On narrow screens it slides in behind the menu button.

import { el, iconButton } from "./dom.js";

export const conversationPath = (id) => `/c/${id}/`;
export const titleOf = (conversation) => conversation?.title || "New chat";

export class Sidebar {
  // actions: {open(id), create(), rename(id, title), remove(id)}
  constructor(root, actions) {
    this.app = root.querySelector(".app");
    this.list = root.querySelector('[data-testid="conversation-list"]');
    this.empty = root.querySelector('[data-testid="conversation-empty"]');
    this.menuButton = root.querySelector('[data-testid="menu-button"]');
    this.actions = actions;
    this.conversations = [];
    this.activeId = null;
    this.editingId = null;
    this.shown = ""; // What the list shows now, to skip identical re-renders.
    this.wire(root);
  }

  wire(root) {
    root.querySelector('[data-testid="new-conversation"]').addEventListener("click", () => {
      this.setOpen(false);
      this.actions.create();
    });
    this.menuButton.addEventListener("click", () => this.setOpen(true));
    root.querySelector('[data-testid="sidebar-close"]').addEventListener("click", () => this.setOpen(false));
    root.querySelector('[data-testid="sidebar-backdrop"]').addEventListener("click", () => this.setOpen(false));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.isOpen) this.setOpen(false);
    });
  }

  get isOpen() {
    return this.app.dataset.sidebarOpen === "true";
  }

  setOpen(open) {
    this.app.dataset.sidebarOpen = String(open);
    this.menuButton.setAttribute("aria-expanded", String(open));
    if (open) this.app.querySelector('[data-testid="new-conversation"]').focus();
  }

  // conversations: Iterable of conversation objects; sorted newest first here.
  render(conversations, activeId) {
    this.conversations = [...conversations].sort((a, b) => b.updated_at.localeCompare(a.updated_at));
    this.activeId = activeId;
    if (this.editingId !== null) return; // Re-rendered when the rename ends.
    const shown = JSON.stringify([activeId, this.conversations.map(({ id, title }) => [id, title])]);
    if (shown === this.shown) return; // Keeps focus and hover while replies stream.
    this.shown = shown;
    this.list.replaceChildren(...this.conversations.map((item) => this.item(item)));
    this.empty.hidden = this.conversations.length > 0;
  }

  item(conversation) {
    const active = conversation.id === this.activeId;
    const title = titleOf(conversation);
    const link = el("a", {
      className: "conversation-link", href: conversationPath(conversation.id),
      text: title, title, "aria-current": active ? "page" : false,
    });
    link.addEventListener("click", (event) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      this.setOpen(false);
      this.actions.open(conversation.id);
    });
    const rename = iconButton("pencil", `Rename “${title}”`, { "data-testid": "rename-conversation" });
    rename.addEventListener("click", () => this.startRename(conversation, item));
    const remove = iconButton("trash", `Delete “${title}”`, { "data-testid": "delete-conversation" });
    remove.addEventListener("click", () => this.actions.remove(conversation.id));
    const item = el("li", {
      className: active ? "conversation-item is-active" : "conversation-item",
      "data-testid": "conversation-item", "data-conversation-id": conversation.id,
    }, link, el("span", { className: "conversation-actions" }, rename, remove));
    return item;
  }

  startRename(conversation, item) {
    this.editingId = conversation.id;
    const input = el("input", {
      className: "conversation-rename", type: "text", maxlength: 200,
      "aria-label": "New title", "data-testid": "rename-input",
    });
    input.value = conversation.title;
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (save && title !== conversation.title) await this.actions.rename(conversation.id, title);
      this.editingId = null;
      this.shown = "";
      this.render(this.conversations, this.activeId);
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") finish(true);
      if (event.key === "Escape") {
        event.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    item.replaceChildren(input);
    input.focus();
    input.select();
  }
}
