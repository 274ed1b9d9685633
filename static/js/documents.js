// Documents to chat with (docs/protocol.md, "Documents"): upload, the list of
// files with their indexing state, polling until each is ready or failed, and
// removal. The chat's documents panel and the library page both use it.

import { ApiError, request } from "./api.js";
import { el, iconButton, setText } from "./dom.js";

const ROOT = "/api/documents/";
const POLL_MS = 1000;
const FINISHED = new Set(["ready", "failed"]);
// What the file picker offers; the server decides (by name, type and first bytes).
export const ACCEPTED_FILES = ".txt,.md,.markdown,.html,.htm,.pdf,text/plain,text/markdown,text/html,application/pdf";

export const documentsApi = {
  list: async (query = "") => (await request("GET", `${ROOT}${query}`)).documents,
  get: (id) => request("GET", `${ROOT}${id}`),
  remove: (id) => request("DELETE", `${ROOT}${id}`),
  passage: (id) => request("GET", `/api/passages/${id}`),
  upload,
};

// POST one file as multipart; resolves to the document (202) or throws the
// server's refusal as an ApiError whose message is a sentence for people.
// `onProgress(fraction)` follows the bytes sent.
async function upload(file, { conversation = null, onProgress } = {}) {
  const form = new FormData();
  form.append("file", file);
  form.append("size", String(file.size)); // fewer bytes arriving is refused, not indexed
  if (conversation !== null) form.append("conversation", String(conversation));
  try {
    return await request("POST", ROOT, form, { onUploadProgress: onProgress });
  } catch (error) {
    if (error.status === 0) {
      throw new ApiError(0, { error: { message: `Could not upload ${file.name}: the server is out of reach.` } });
    }
    // A proxy in front may refuse a large body before Django can say why.
    if (error.status === 413 && error.code === "http_error") {
      throw new ApiError(413, { error: { message: `${file.name} is too large.` } });
    }
    throw error;
  }
}

// One line about where a document stands, for people.
export function describeState(document) {
  switch (document.status) {
    case "uploading": return `Uploading… ${Math.round((document.progress ?? 0) * 100)}%`;
    case "queued": return "Waiting to be read…";
    case "parsing": return "Reading the file…";
    case "indexing": return `Indexing… ${Math.round((document.progress ?? 0) * 100)}%`;
    case "ready": return readySummary(document);
    case "failed": return document.error?.message || "This file could not be read.";
    default: return document.status;
  }
}

function readySummary(document) {
  const passages = `${document.chunks} ${document.chunks === 1 ? "passage" : "passages"}`;
  if (!document.pages || document.kind !== "pdf") return `Ready · ${passages}`;
  return `Ready · ${document.pages} ${document.pages === 1 ? "page" : "pages"} · ${passages}`;
}

// A <ul> of documents kept in step with the server: a row per document, a
// poll each second for every one still on its way, a remove button.
export class DocumentList {
  // options: changed(documents) after any change; announce(text) that a
  // document became ready or failed; refused(message) shows what the server
  // refused (an upload, a delete); confirmRemove(document): false keeps it.
  constructor(list, { changed = () => {}, announce = () => {}, refused, confirmRemove = () => true }) {
    this.list = list;
    this.changed = changed;
    this.announce = announce;
    this.refused = refused;
    this.confirmRemove = confirmRemove;
    this.rows = new Map(); // document id -> {document, element, parts, timer}
    this.generation = 0; // bumped by replace(): answers for an older list are dropped
  }

  get documents() {
    return [...this.rows.values()].map((row) => row.document);
  }

  // Show exactly these documents (newest first, as the server lists them).
  replace(documents) {
    this.generation += 1;
    for (const id of [...this.rows.keys()]) this.drop(id);
    for (const document of [...documents].reverse()) this.add(document);
    this.changed(this.documents);
  }

  clear() {
    this.replace([]);
  }

  // A row for an upload on its way; returns its temporary id.
  addUploading(file) {
    const document = { id: `upload-${crypto.randomUUID?.() ?? Math.random()}`, filename: file.name, status: "uploading", progress: 0 };
    this.add(document);
    this.changed(this.documents);
    return document.id;
  }

  // Bytes of an upload on its way: `fraction` of the file sent.
  uploadProgress(temporaryId, fraction) {
    const row = this.rows.get(temporaryId);
    if (!row) return;
    row.document = { ...row.document, progress: fraction };
    this.show(row);
  }

  // The upload answered: the temporary row becomes the document (or goes).
  settleUpload(temporaryId, document) {
    this.drop(temporaryId);
    if (document) this.add(document);
    this.changed(this.documents);
  }

  add(document) {
    const row = { document, ...buildRow(document) };
    row.parts.remove.addEventListener("click", () => this.remove(row.document));
    this.rows.set(document.id, row);
    this.list.prepend(row.element);
    this.show(row);
    if (!FINISHED.has(document.status) && document.status !== "uploading") this.poll(document.id);
  }

  update(document) {
    const row = this.rows.get(document.id);
    if (!row) return;
    const before = row.document.status;
    row.document = document;
    this.show(row);
    if (before !== document.status && FINISHED.has(document.status)) {
      this.announce(document.status === "ready"
        ? `${document.filename} is ready.` : `${document.filename} could not be indexed: ${describeState(document)}`);
    }
    this.changed(this.documents);
  }

  show({ document, element, parts }) {
    if (element.dataset.status !== document.status) element.dataset.status = document.status;
    setText(parts.state, describeState(document));
    const moving = ["uploading", "parsing", "indexing"].includes(document.status);
    parts.progress.hidden = !moving;
    parts.progress.value = document.progress ?? 0;
    if (typeof document.id === "number") parts.name.href = `${ROOT}${document.id}/file`;
    parts.remove.hidden = document.status === "uploading";
  }

  // Every POLL_MS until the document is ready or failed, gone, or off the list.
  poll(id) {
    const row = this.rows.get(id);
    if (!row) return;
    const generation = this.generation;
    row.timer = setTimeout(async () => {
      try {
        const document = await documentsApi.get(id);
        if (generation !== this.generation || !this.rows.has(id)) return;
        this.update(document);
        if (!FINISHED.has(document.status)) this.poll(id);
      } catch (error) {
        if (generation !== this.generation) return;
        if (error.status === 404) return this.forget(id);
        this.poll(id); // A blip: try again on the next tick.
      }
    }, POLL_MS);
  }

  async remove(document) {
    if (!this.confirmRemove(document)) return;
    const row = this.rows.get(document.id);
    row.parts.remove.disabled = true;
    try {
      await documentsApi.remove(document.id);
    } catch (error) {
      if (error.status !== 404) {
        row.parts.remove.disabled = false;
        return this.refused(error.message);
      }
    }
    this.forget(document.id);
    this.announce(`${document.filename} removed.`);
  }

  forget(id) {
    this.drop(id);
    this.changed(this.documents);
  }

  drop(id) {
    const row = this.rows.get(id);
    if (!row) return;
    clearTimeout(row.timer);
    row.element.remove();
    this.rows.delete(id);
  }
}

function buildRow(document) {
  const parts = {
    name: el("a", {
      className: "document-name", "data-testid": "document-name", download: "",
      text: document.filename, title: `Download ${document.filename}`,
    }),
    state: el("span", { className: "document-state", "data-testid": "document-state" }),
    progress: el("progress", {
      className: "document-progress", "data-testid": "document-progress", max: 1,
      "aria-label": `Indexing ${document.filename}`,
    }),
    remove: iconButton("trash", `Remove ${document.filename}`, { "data-testid": "document-remove" }),
  };
  const element = el("li", { className: "document", "data-testid": "document", "data-document-id": document.id },
    el("span", { className: "document-kind", "aria-hidden": "true", text: kindLabel(document) }),
    el("span", { className: "document-main" }, parts.name, parts.state, parts.progress),
    parts.remove);
  return { element, parts };
}

function kindLabel(document) {
  const extension = document.filename.includes(".") ? document.filename.split(".").pop() : "";
  return (document.kind === "markdown" ? "md" : document.kind || extension || "doc").slice(0, 4).toUpperCase();
}

// Upload files one after another into `list` (into the library without a
// conversation); each refusal goes to the list's refused(message).
export async function uploadFiles(files, list, { conversation = null } = {}) {
  for (const file of files) {
    const temporaryId = list.addUploading(file);
    try {
      const onProgress = (fraction) => list.uploadProgress(temporaryId, fraction);
      list.settleUpload(temporaryId, await documentsApi.upload(file, { conversation, onProgress }));
    } catch (error) {
      list.settleUpload(temporaryId, null);
      list.refused(error.message);
    }
  }
}
