// Small DOM helpers. Text always goes in through textContent, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

const ICON_PATHS = {
  copy: ["M9 9h10v10H9z", "M5 15V5h10"],
  check: ["M5 12l5 5 9-10"],
  regenerate: ["M20 12a8 8 0 1 1-2.4-5.7", "M20 4v5h-5"],
  pencil: ["M4 20h4L19 9l-4-4L4 16z", "M13 7l4 4"],
  trash: ["M5 7h14", "M10 7V4h4v3", "M7 7l1 13h8l1-13"],
  previous: ["M15 6l-6 6 6 6"],
  next: ["M9 6l6 6-6 6"],
  close: ["M6 6l12 12", "M18 6L6 18"],
  info: ["M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z", "M12 11v6", "M12 7.5v.01"],
  // Thumbs up; CSS turns it over for thumbs down.
  thumb: ["M7 11v9H4v-9z", "M7 11l4-8a2.2 2.2 0 0 1 3 2.6L13 10h5.6a2 2 0 0 1 2 2.4l-1.4 6a2 2 0 0 1-2 1.6H7"],
};

export function icon(name) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  for (const d of ICON_PATHS[name]) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

// el("button", {className: "x", text: "Hi", "aria-label": "…", onclick: fn}, ...children)
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "text") element.textContent = value;
    else if (name === "className") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children);
  return element;
}

// Write text only when it changed: no needless DOM mutations (selection,
// screen readers) on every streaming frame.
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

export function iconButton(name, label, attributes = {}) {
  const className = `icon-button ${attributes.className ?? ""}`.trim();
  return el("button", { type: "button", title: label, "aria-label": label, ...attributes, className }, icon(name));
}

// Copy to the clipboard; falls back to a hidden textarea where the Clipboard
// API is missing (plain-http deployments are not a "secure context").
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el("textarea", { className: "visually-hidden", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    return copied;
  }
}

// Show a tick on a copy button for a moment.
export async function copyWithFeedback(button, text) {
  if (!(await copyText(text))) return;
  button.replaceChildren(icon("check"));
  button.classList.add("is-done");
  setTimeout(() => {
    button.replaceChildren(icon("copy"));
    button.classList.remove("is-done");
  }, 1500);
}
