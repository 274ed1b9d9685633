// JSON requests for the staff pages (review, learning dashboard, arena):
// session cookie plus the X-CSRFToken header; a refusal throws its message.

export class RequestError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `The server answered with an error (${status}).`);
    this.status = status;
    this.code = body?.error?.code || "http_error";
  }
}

export async function requestJson(method, url, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRFToken"] = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
  }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new RequestError(0, { error: { message: "Could not reach the server." } });
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new RequestError(response.status, data);
  return data;
}

export function readConfig() {
  return JSON.parse(document.getElementById("client-config").textContent);
}

export function announce(text) {
  const region = document.querySelector("[data-testid$='-announcer']");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => { region.textContent = text; }, 30);
}
