// Feedback on one finished reply: thumbs up and down, "This one is better"
// among regenerated siblings, a summary of what was said, the optional form
// with preset reasons and a comment that opens after a thumb is pressed, and
// under a thumbs-down "Write a better reply": an editor that starts from the
// model's text and saves the user's own reply as a sibling.

import { el, icon, setText } from "./dom.js";
import { isRateable } from "./tree.js";

// Reasons about the sources a reply was grounded on (the page config's
// groundedOnlyReasons, from feedback.models.GROUNDED_ONLY_REASONS) are offered
// only for a reply that had some; the server refuses them on a plain one.

const THUMBS = {
  up: { label: "Good reply", legend: "What was good?" },
  down: { label: "Bad reply", legend: "What was wrong?" },
};

export class FeedbackControls {
  // actions: {rate(message, value, details?) -> Promise<boolean>, prefer(message),
  //           write(message, content) -> Promise<boolean>}
  // config: {reasons: {up: {key: label}, down: {…}}, maxCommentChars, groundedOnlyReasons,
  //          maxReplyChars}
  constructor(actions, config) {
    this.actions = actions;
    this.config = config;
    this.entry = null;
    this.message = null;
    this.rating = null;
    this.form = null; // The open form, if any; form.value is its thumb.
    this.editor = null; // The open "Write a better reply" editor, if any.
    this.thumbs = { up: thumbButton("up"), down: thumbButton("down") };
    this.thumbGroup = el("span", { className: "feedback-thumbs", role: "group", "aria-label": "Rate this reply" },
      this.thumbs.up, this.thumbs.down);
    this.prefer = el("button", { type: "button", className: "chip-button", "data-testid": "prefer", text: "This one is better" });
    this.badge = el("span", { className: "preferred-badge", "data-testid": "preferred-badge", text: "Preferred", hidden: true });
    this.summaryText = el("span", { className: "feedback-summary-text" });
    this.edit = el("button", { type: "button", className: "link-button", "data-testid": "feedback-edit",
      text: "Edit", "aria-label": "Edit your feedback" });
    this.summary = el("p", { className: "feedback-summary", "data-testid": "feedback-summary", hidden: true },
      this.summaryText, this.edit);
    // Below the reply's footer, so that the footer keeps to one line on a phone.
    this.preferLine = el("p", { className: "feedback-prefer", hidden: true }, this.prefer, this.badge);
    this.write = el("button", { type: "button", className: "chip-button", "data-testid": "write-better", text: "Write a better reply" });
    this.writeLine = el("p", { className: "feedback-write", hidden: true }, this.write);
    this.slot = el("div", { className: "feedback-slot" }, this.summary, this.preferLine, this.writeLine);
    this.wire();
  }

  wire() {
    for (const value of ["up", "down"]) {
      this.thumbs[value].addEventListener("click", () => this.press(value));
    }
    this.prefer.addEventListener("click", () => this.actions.prefer(this.message));
    this.write.addEventListener("click", () => this.openEditor());
    this.edit.addEventListener("click", () => {
      this.openForm(this.rating.value);
      this.form.querySelector("input, textarea").focus();
    });
  }

  // entry: a MessageTree.branch() entry.
  update(entry) {
    const { message, rating, preferred, canPrefer, written } = entry;
    this.entry = entry;
    this.message = message;
    this.rating = rating;
    this.thumbGroup.hidden = !isRateable(message);
    for (const value of ["up", "down"]) {
      const pressed = String(rating?.value === value);
      if (this.thumbs[value].getAttribute("aria-pressed") !== pressed) this.thumbs[value].setAttribute("aria-pressed", pressed);
    }
    this.prefer.hidden = !canPrefer || preferred;
    this.badge.hidden = !preferred;
    this.preferLine.hidden = this.prefer.hidden && this.badge.hidden;
    // A rating that changed under an open form (refused, cleared) closes it.
    if (this.form && this.form.value !== rating?.value) this.closeForm();
    const canWrite = isRateable(message) && rating?.value === "down";
    if (!canWrite) this.closeEditor();
    setText(this.write, written ? "Edit your better reply" : "Write a better reply");
    this.writeLine.hidden = !canWrite || Boolean(this.editor);
    const said = this.form ? "" : describe(rating, this.config.reasons);
    setText(this.summaryText, said);
    this.summary.hidden = !said;
  }

  // A second press on the same thumb clears the rating; the other thumb switches.
  press(value) {
    const next = this.rating?.value === value ? null : value;
    if (next) this.openForm(next);
    else this.closeForm();
    this.actions.rate(this.message, next);
  }

  openForm(value) {
    this.closeForm();
    const rating = this.rating?.value === value ? this.rating : null;
    this.form = buildForm(this.message, value, rating, this.config);
    this.form.value = value;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(event.currentTarget);
    });
    this.form.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.stopPropagation();
      this.dismiss();
    });
    this.form.querySelector('[data-action="dismiss"]').addEventListener("click", () => this.dismiss());
    // Right after the thumbs in focus order; in sight, not under the composer.
    this.slot.insertBefore(this.form, this.preferLine);
    this.summary.hidden = true;
    this.form.scrollIntoView({ block: "nearest" });
  }

  closeForm() {
    this.form?.remove();
    this.form = null;
  }

  // The editor starts from the model's text, or from the user's own earlier one.
  openEditor() {
    this.closeEditor();
    const start = this.entry.written?.content ?? this.message.content;
    this.editor = new ReplyEditor(this.message.id, start, this.config.maxReplyChars, {
      save: (content) => this.actions.write(this.message, content),
      close: () => {
        this.closeEditor();
        this.update(this.entry);
        this.write.focus();
      },
    });
    this.slot.append(this.editor.form);
    this.writeLine.hidden = true;
    this.editor.focus();
  }

  closeEditor() {
    this.editor?.form.remove();
    this.editor = null;
  }

  // Close the form and put focus back where it came from.
  dismiss() {
    const value = this.form?.value;
    this.closeForm();
    this.update(this.entry);
    if (value) this.thumbs[value].focus();
  }

  async submit(form) {
    const reasons = [...form.querySelectorAll('input[name="reason"]:checked')].map((input) => input.value);
    const comment = form.elements.comment.value.trim();
    const button = form.querySelector('[type="submit"]');
    button.disabled = true;
    const saved = await this.actions.rate(this.message, form.value, { reasons, comment });
    button.disabled = false;
    if (saved && this.form === form) this.dismiss();
  }
}

function thumbButton(value) {
  const { label } = THUMBS[value];
  return el("button", {
    type: "button", className: `icon-button thumb thumb-${value}`, title: label, "aria-label": label,
    "aria-pressed": "false", "data-testid": `thumb-${value}`,
  }, icon("thumb"));
}

// The reasons offered for one thumb on one reply: those about sources only if it had any.
function offeredReasons(message, value, { reasons, groundedOnlyReasons = [] }) {
  const grounded = (message.sources ?? []).length > 0;
  return Object.entries(reasons[value]).filter(([key]) => grounded || !groundedOnlyReasons.includes(key));
}

function buildForm(message, value, rating, config) {
  const messageId = message.id;
  const { maxCommentChars } = config;
  const chosen = new Set(rating?.reasons ?? []);
  const chips = offeredReasons(message, value, config).map(([key, label]) => el("label", { className: "reason-chip" },
    el("input", { type: "checkbox", name: "reason", value: key, checked: chosen.has(key), "data-testid": `reason-${key}` }),
    label));
  const commentId = `feedback-comment-${messageId}`;
  const comment = el("textarea", {
    id: commentId, name: "comment", rows: 2, maxlength: maxCommentChars, "data-testid": "feedback-comment",
  });
  comment.value = rating?.comment ?? "";
  return el("form", { className: "feedback-form", "data-testid": "feedback-form", "aria-label": "More about your rating" },
    el("fieldset", {},
      el("legend", {}, THUMBS[value].legend, el("span", { className: "optional", text: " (optional)" })),
      el("div", { className: "reason-chips" }, ...chips)),
    el("label", { for: commentId, className: "feedback-comment-label" }, "Anything else? ",
      el("span", { className: "optional", text: "(optional)" })),
    comment,
    el("div", { className: "feedback-form-actions" },
      el("button", { type: "button", className: "button", "data-action": "dismiss", "data-testid": "feedback-dismiss", text: "Not now" }),
      el("button", { type: "submit", className: "button button-primary", "data-testid": "feedback-submit", text: "Submit" })));
}

// "You said: Wrong, Too long · “It said Lyon.”", or "" when there is nothing to show.
function describe(rating, reasons) {
  if (!rating || (!rating.reasons.length && !rating.comment)) return "";
  const labels = rating.reasons.map((key) => reasons[rating.value][key] ?? key);
  const parts = [labels.join(", "), rating.comment ? `“${rating.comment}”` : ""].filter(Boolean);
  return `You said: ${parts.join(" · ")}`;
}

// "Write a better reply": a textarea with a character count, Save and Cancel.
// Save stays off while the text is empty or over the limit (the server refuses
// both too); a refused save keeps the text where it was.
class ReplyEditor {
  constructor(messageId, text, limit, { save, close }) {
    const id = `better-reply-${messageId}`;
    this.limit = limit;
    this.textarea = el("textarea", { id, name: "content", rows: 6, "data-testid": "write-text", "aria-describedby": `${id}-count` });
    this.textarea.value = text;
    this.count = el("p", { id: `${id}-count`, className: "write-count", "data-testid": "write-count", "aria-live": "polite" });
    this.saveButton = el("button", { type: "submit", className: "button button-primary", "data-testid": "write-save", text: "Save" });
    this.form = el("form", { className: "feedback-form write-form", "data-testid": "write-form", "aria-label": "Write a better reply" },
      el("label", { for: id, className: "feedback-comment-label" }, "The reply you wanted ",
        el("span", { className: "optional", text: "(it is kept as a reply written by you)" })),
      this.textarea, this.count,
      el("div", { className: "feedback-form-actions" },
        el("button", { type: "button", className: "button", "data-testid": "write-cancel", text: "Cancel", onclick: close }),
        this.saveButton));
    this.textarea.addEventListener("input", () => this.counted());
    this.form.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.stopPropagation();
      close();
    });
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      this.saveButton.disabled = true;
      const saved = await save(this.textarea.value);
      if (saved) close();
      else this.counted();
    });
    this.counted();
  }

  counted() {
    const length = this.textarea.value.length;
    const over = length > this.limit;
    setText(this.count, over
      ? `${length} / ${this.limit} characters: ${length - this.limit} too many`
      : `${length} / ${this.limit} characters`);
    this.count.classList.toggle("is-over", over);
    this.textarea.setAttribute("aria-invalid", String(over));
    this.saveButton.disabled = over || !this.textarea.value.trim();
  }

  focus() {
    this.form.scrollIntoView({ block: "nearest" });
    this.textarea.focus();
  }
}
