// The message box: Enter sends, Shift+Enter adds a line, the box grows with
// its text, and a stop button stands in for send while a reply is written.

const MAX_HEIGHT_PX = 220;

export class Composer {
  // actions: {send(text) -> Promise<boolean> (false keeps the text), stop()}
  constructor(form, actions) {
    this.form = form;
    this.textarea = form.querySelector("textarea");
    this.sendButton = form.querySelector('[data-testid="send"]');
    this.stopButton = form.querySelector('[data-testid="stop"]');
    this.actions = actions;
    this.canSend = false;
    this.wire();
  }

  wire() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.textarea.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      event.preventDefault();
      this.submit();
    });
    this.textarea.addEventListener("input", () => this.refresh());
    this.stopButton.addEventListener("click", () => this.actions.stop());
  }

  get text() {
    return this.textarea.value;
  }

  async submit() {
    const text = this.text;
    if (!this.canSend || !text.trim()) return;
    this.textarea.value = "";
    this.refresh();
    if (!(await this.actions.send(text))) this.restore(text);
  }

  // Put text back after a refused send, unless the user already typed more.
  restore(text) {
    if (this.text.trim()) return;
    this.textarea.value = text;
    this.refresh();
  }

  // canSend: connected and idle; running: a reply streams (show stop).
  setState({ canSend, running }) {
    if (canSend === this.canSend && running === !this.stopButton.hidden) return;
    this.canSend = canSend;
    this.stopButton.hidden = !running;
    this.sendButton.hidden = running;
    this.refresh();
  }

  refresh() {
    this.sendButton.disabled = !this.canSend || !this.text.trim();
    this.textarea.style.height = "auto";
    this.textarea.style.height = `${Math.min(this.textarea.scrollHeight, MAX_HEIGHT_PX)}px`;
  }

  focus() {
    this.textarea.focus();
  }
}
