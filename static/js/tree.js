// One conversation's messages. They form a tree through `parent`; replies to
// the same user message are siblings. The view shows one branch: at each node
// the chosen child, by default the newest.

export class MessageTree {
  constructor() {
    this.messages = new Map(); // id -> message object (docs/protocol.md)
    this.chosen = new Map(); // parent id (null for the first turn) -> chosen child id
  }

  get(id) {
    return this.messages.get(id);
  }

  get size() {
    return this.messages.size;
  }

  upsert(message) {
    const merged = { ...this.messages.get(message.id), ...message };
    this.messages.set(message.id, merged);
    return merged;
  }

  // Merge a copy read over HTTP. A reply still streaming here keeps the text
  // that arrived as tokens: the server only stores text when the reply ends.
  mergeStored(message) {
    const local = this.messages.get(message.id);
    if (local?.status === "streaming" && message.status === "streaming") return local;
    return this.upsert(message);
  }

  appendText(id, text) {
    const message = this.messages.get(id);
    if (message) message.content += text;
    return message;
  }

  choose(message) {
    this.chosen.set(message.parent, message.id);
  }

  siblings(message) {
    return this.childrenByParent().get(message.parent) ?? [message];
  }

  childrenByParent() {
    const children = new Map();
    for (const message of this.messages.values()) {
      if (!children.has(message.parent)) children.set(message.parent, []);
      children.get(message.parent).push(message);
    }
    for (const list of children.values()) list.sort((a, b) => a.id - b.id);
    return children;
  }

  // [{message, index, count}] from the first turn down the chosen children.
  branch() {
    const children = this.childrenByParent();
    const path = [];
    let parent = null;
    while (children.has(parent)) {
      const siblings = children.get(parent);
      const wanted = this.chosen.get(parent);
      const message = siblings.find((item) => item.id === wanted) ?? siblings.at(-1);
      path.push({ message, index: siblings.indexOf(message), count: siblings.length });
      parent = message.id;
    }
    return path;
  }

  // The id a new user message follows: the last visible assistant reply.
  lastReplyId() {
    const replies = this.branch().filter(({ message }) => message.role === "assistant");
    return replies.at(-1)?.message.id ?? null;
  }
}
