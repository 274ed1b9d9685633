// The chat's documents: the Attach button by the composer, the panel listing
// the files attached to the open conversation with their state, and its
// "Also search my library" switch (the conversation's use_library).

import { el, setText } from "./dom.js";
import { ACCEPTED_FILES, DocumentList, documentsApi, uploadFiles } from "./documents.js";

const $ = (root, testid) => root.querySelector(`[data-testid="${testid}"]`);

export class DocumentsPanel {
  // actions: {ensureConversation() -> Promise<id> (an empty chat starts its
  // conversation), setUseLibrary(id, on) -> Promise, announce(text)}
  constructor(root, actions) {
    this.actions = actions;
    this.panel = $(root, "documents-panel");
    this.button = $(root, "documents-button");
    this.count = $(root, "documents-count");
    this.input = $(root, "attach-input");
    this.useLibrary = $(root, "use-library");
    this.empty = $(this.panel, "documents-empty");
    this.errors = $(this.panel, "upload-errors");
    this.conversationId = null;
    this.savingLibrary = false; // Renders leave the switch alone while it is saved.
    this.loads = 0; // Which list request is the latest.
    this.list = new DocumentList($(this.panel, "document-list"), {
      changed: (documents) => this.changed(documents),
      announce: actions.announce,
      refused: (message) => this.refused(message),
    });
    this.input.accept = ACCEPTED_FILES;
    this.wire(root);
  }

  wire(root) {
    $(root, "attach").addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      const files = [...this.input.files];
      this.input.value = ""; // The same file again is a new choice.
      if (files.length) this.attach(files);
    });
    this.button.addEventListener("click", () => this.setOpen(this.panel.hidden));
    $(this.panel, "documents-close").addEventListener("click", () => {
      this.setOpen(false);
      this.button.focus();
    });
    this.useLibrary.addEventListener("change", () => this.saveUseLibrary(this.useLibrary.checked));
  }

  setOpen(open) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
  }

  // Called on every render with the open conversation (null in an empty chat).
  show(conversation) {
    const id = conversation?.id ?? null;
    if (!this.savingLibrary) this.useLibrary.checked = Boolean(conversation?.use_library);
    if (id === this.conversationId) return;
    this.conversationId = id;
    this.clearErrors();
    this.list.clear();
    if (id !== null) this.load(id);
  }

  async load(id) {
    const load = ++this.loads;
    try {
      const documents = await documentsApi.list(`?conversation=${id}`);
      if (load === this.loads && id === this.conversationId) this.list.replace(documents);
    } catch (error) {
      if (load === this.loads) this.refused(error.message);
    }
  }

  async attach(files) {
    this.clearErrors();
    this.setOpen(true);
    let conversation;
    try {
      conversation = await this.startConversation();
    } catch (error) {
      return this.refused(error.message);
    }
    await uploadFiles(files, this.list, { conversation });
  }

  // In an empty chat, start the conversation the upload or switch belongs to.
  // It is new, so there is no list to load: show() then finds it current.
  async startConversation() {
    if (this.conversationId === null) this.conversationId = await this.actions.ensureConversation();
    return this.conversationId;
  }

  async saveUseLibrary(on) {
    this.clearErrors();
    this.savingLibrary = true;
    try {
      await this.actions.setUseLibrary(await this.startConversation(), on);
    } catch (error) {
      this.useLibrary.checked = !on;
      this.refused(error.fields?.use_library ?? error.message);
    } finally {
      this.savingLibrary = false;
    }
  }

  changed(documents) {
    this.empty.hidden = documents.length > 0;
    const count = documents.length;
    setText(this.count, count ? String(count) : "");
    this.count.hidden = count === 0;
  }

  refused(message) {
    this.setOpen(true);
    this.errors.append(el("p", { "data-testid": "upload-error", text: message }));
  }

  // The alert region stays in the page (empty), so that what lands in it is heard.
  clearErrors() {
    this.errors.replaceChildren();
  }
}
