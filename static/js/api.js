// The JSON HTTP API (docs/protocol.md): session cookie plus the X-CSRFToken header.

const ROOT = "/api/conversations/";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || describeStatus(status));
    this.status = status;
    this.code = body?.error?.code || "http_error";
    this.fields = body?.error?.fields || {};
  }
}

function describeStatus(status) {
  if (status === 403) return "The server refused the request. Reload the page and try again.";
  if (status === 404) return "That conversation no longer exists.";
  return `The server answered with an error (${status}).`;
}

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

// `body` is sent as JSON, or as multipart when it is FormData (an upload).
// `onUploadProgress(fraction)`, if given, follows the body's bytes on their way.
export async function request(method, path, body, { onUploadProgress } = {}) {
  const headers = { Accept: "application/json" };
  const form = body instanceof FormData;
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  const payload = body === undefined || form ? body : JSON.stringify(body);
  let response;
  try {
    response = onUploadProgress
      ? await sendTracked(method, path, headers, payload, onUploadProgress)
      : await fetch(path, { method, headers, credentials: "same-origin", body: payload });
  } catch {
    throw new ApiError(0, { error: { message: "Could not reach the server." } });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// fetch() reports no upload progress; XMLHttpRequest does. Resolves to a
// Response, so request() reads the answer the same way either way.
function sendTracked(method, path, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => resolve(new Response(xhr.status === 204 ? null : xhr.responseText, {
      status: xhr.status,
      headers: { "Content-Type": xhr.getResponseHeader("Content-Type") ?? "" },
    })));
    xhr.addEventListener("error", () => reject(new TypeError("The request did not reach the server.")));
    xhr.addEventListener("abort", () => reject(new TypeError("The request was aborted.")));
    xhr.send(body ?? null);
  });
}

export const api = {
  listConversations: async () => (await request("GET", ROOT)).conversations,
  createConversation: (title = "") => request("POST", ROOT, title ? { title } : {}),
  getConversation: (id) => request("GET", `${ROOT}${id}/`),
  updateConversation: (id, changes) => request("PATCH", `${ROOT}${id}/`, changes),
  deleteConversation: (id) => request("DELETE", `${ROOT}${id}/`),
};
