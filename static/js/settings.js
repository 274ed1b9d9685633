// The per-conversation settings dialog. The server validates; its per-field
// messages are shown under each field.

const FIELDS = ["title", "system_prompt", "temperature", "top_p", "max_new_tokens"];

export class SettingsDialog {
  // save(changes) resolves to the saved conversation or throws an ApiError.
  constructor(dialog, save) {
    this.dialog = dialog;
    this.form = dialog.querySelector("form");
    this.summary = dialog.querySelector('[data-testid="settings-errors"]');
    this.save = save;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    for (const button of dialog.querySelectorAll('[data-action="close"]')) {
      button.addEventListener("click", () => dialog.close());
    }
  }

  open(conversation) {
    for (const name of FIELDS) this.form.elements[name].value = conversation[name] ?? "";
    this.showErrors({});
    this.dialog.showModal();
  }

  values() {
    const values = {};
    for (const name of FIELDS) {
      const input = this.form.elements[name];
      values[name] = input.dataset.kind ? asNumber(input.value) : input.value;
    }
    return values;
  }

  async submit() {
    const button = this.form.querySelector('[type="submit"]');
    button.disabled = true;
    try {
      await this.save(this.values());
      this.dialog.close();
    } catch (error) {
      this.showErrors(error.fields && Object.keys(error.fields).length ? error.fields : { __all__: error.message });
    } finally {
      button.disabled = false;
    }
  }

  showErrors(fields) {
    for (const element of this.form.querySelectorAll("[data-error-for]")) {
      const message = fields[element.dataset.errorFor];
      element.textContent = message ?? "";
      element.hidden = !message;
      const input = this.form.elements[element.dataset.errorFor];
      input.toggleAttribute("aria-invalid", Boolean(message));
    }
    const other = Object.entries(fields).filter(([name]) => !FIELDS.includes(name));
    this.summary.textContent = other.map(([, message]) => message).join(" ");
    this.summary.hidden = other.length === 0;
    this.form.querySelector('[aria-invalid]')?.focus();
  }
}

// An empty or unreadable number goes to the server as null, which says why.
function asNumber(text) {
  const value = Number(text);
  return text.trim() === "" || Number.isNaN(value) ? null : value;
}
