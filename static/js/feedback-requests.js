// Sends `rate`, `prefer` and `write_reply` frames (docs/protocol.md) and applies their
// answers. A change shows at once; a refusal puts the old state back and says
// why. Each request resolves true once the server saved it, false otherwise.

const ANNOUNCEMENTS = { up: "Rated up", down: "Rated down" };

export class FeedbackRequests {
  // hooks: {treeOf(conversationId), changed(), announce(text), notify(text)}
  constructor(socket, hooks) {
    this.socket = socket;
    this.hooks = hooks;
    this.pending = new Map(); // nonce -> {tree, undo, resolve, details}
  }

  // value: "up", "down" or null (clear); details: {reasons, comment} from the form.
  rate(message, value, details = null) {
    const tree = this.hooks.treeOf(message.conversation);
    const previous = tree.rating(message.id);
    const frame = { type: "rate", message: message.id, value, ...details };
    const rating = value && { status: "pending", reasons: [], comment: "", ...details, value };
    return this.request(frame, {
      tree, details,
      apply: () => tree.setRating(message.id, rating),
      undo: () => tree.setRating(message.id, previous),
    });
  }

  prefer(message) {
    const tree = this.hooks.treeOf(message.conversation);
    const previous = tree.preferred(message.parent);
    return this.request({ type: "prefer", message: message.id }, {
      tree,
      apply: () => tree.setPreferred(message.parent, message.id),
      undo: () => tree.setPreferred(message.parent, previous),
    });
  }

  // The reply the user wants instead of a thumbs-down one; shown once saved.
  write(message, content) {
    const tree = this.hooks.treeOf(message.conversation);
    return this.request({ type: "write_reply", message: message.id, content }, {
      tree, apply: () => {}, undo: () => {},
    });
  }

  request(frame, { apply, ...pending }) {
    const nonce = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    if (!this.socket.send({ ...frame, nonce })) {
      this.hooks.notify("Not connected to the server. Reconnecting…");
      this.hooks.changed(); // Closes a form opened for the change that did not go.
      return Promise.resolve(false);
    }
    apply();
    this.hooks.changed();
    return new Promise((resolve) => this.pending.set(nonce, { ...pending, resolve }));
  }

  // The `rating` answer: the server's copy wins over what was shown meanwhile.
  rated(frame) {
    const request = this.take(frame.nonce);
    request?.tree.setRating(frame.message, frame.rating);
    if (request?.details) this.hooks.announce("Thanks, your feedback was sent");
    else this.hooks.announce(ANNOUNCEMENTS[frame.rating?.value] ?? "Rating removed");
    request?.resolve(true);
  }

  // The `preference` answer.
  preferred(frame) {
    const request = this.take(frame.nonce);
    const message = request?.tree.get(frame.message);
    if (message) request.tree.setPreferred(message.parent, message.id);
    this.hooks.announce("Marked as the better reply");
    request?.resolve(true);
  }

  // The `written_reply` answer: the written reply joins its siblings, shown.
  wrote(frame) {
    const request = this.take(frame.nonce);
    const tree = request?.tree ?? this.hooks.treeOf(frame.reply.conversation);
    tree.choose(tree.upsert(frame.reply));
    tree.setWritten(frame.message, frame.reply.id);
    this.hooks.announce("Your reply was saved");
    request?.resolve(true);
  }

  // An `error` frame; true when it answered one of ours.
  refused(frame) {
    const request = this.take(frame.nonce);
    if (!request) return false;
    request.undo();
    this.hooks.notify(frame.message || "The server refused that.");
    request.resolve(false);
    return true;
  }

  // The socket closed: answers will not come. A reload of the conversation
  // (after the reconnect) shows what the server kept.
  abandonAll() {
    for (const request of this.pending.values()) request.resolve(false);
    this.pending.clear();
  }

  take(nonce) {
    const request = this.pending.get(nonce);
    this.pending.delete(nonce);
    return request;
  }
}
