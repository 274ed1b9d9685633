// Dismissible notices for refused frames and failed requests, in plain words.

import { el, iconButton } from "./dom.js";

const MAX_SHOWN = 3;

export class Notices {
  constructor(container) {
    this.container = container;
  }

  show(text, { kind = "error", timeout = 0 } = {}) {
    for (const notice of this.container.children) {
      if (notice.dataset.text === text) notice.remove(); // Shown again below, once.
    }
    const close = iconButton("close", "Dismiss", { "data-testid": "notice-dismiss" });
    const notice = el("div", {
      className: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status",
      "data-testid": "notice", "data-text": text,
    }, el("p", { text }), close);
    close.addEventListener("click", () => notice.remove());
    this.container.append(notice);
    while (this.container.children.length > MAX_SHOWN) this.container.firstElementChild.remove();
    if (timeout) setTimeout(() => notice.remove(), timeout);
  }
}
