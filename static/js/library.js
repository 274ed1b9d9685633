// The library page: the user's documents that are not attached to one chat,
// with upload, indexing state and delete (documents.js does the work).

import { el } from "./dom.js";
import { ACCEPTED_FILES, DocumentList, documentsApi, uploadFiles } from "./documents.js";

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const errors = $("upload-errors");
const input = $("library-input");
const announcer = $("announcer");

function refused(message) {
  errors.append(el("p", { "data-testid": "upload-error", text: message }));
}

const list = new DocumentList($("document-list"), {
  changed: (documents) => { $("documents-empty").hidden = documents.length > 0; },
  announce: (text) => { announcer.textContent = text; },
  refused,
  confirmRemove: (document) => window.confirm(
    `Delete “${document.filename}” from your library? Replies that cited it keep the passages they saw.`),
});

input.accept = ACCEPTED_FILES;
$("library-upload").addEventListener("click", () => input.click());
input.addEventListener("change", () => {
  const files = [...input.files];
  input.value = "";
  errors.replaceChildren();
  if (files.length) uploadFiles(files, list);
});

try {
  list.replace(await documentsApi.list("?library=1"));
} catch (error) {
  refused(error.message);
}
$("documents-loading").hidden = true;
