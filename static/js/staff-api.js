// What the staff pages (review, learning dashboard, arena) share besides
// api.js's request(): their client config and the live region.

export function readConfig() {
  return JSON.parse(document.getElementById("client-config").textContent);
}

export function announce(text) {
  const region = document.querySelector("[data-testid$='-announcer']");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => { region.textContent = text; }, 30);
}
