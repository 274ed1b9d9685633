// One conversation's messages. They form a tree through `parent`; replies to
// the same user message are siblings. The view shows one branch: at each node
// the chosen child, by default the newest. The user's own feedback rides along:
// a rating per reply, per user message the reply marked better, and per
// thumbs-down reply the reply the user wrote instead ("Write a better reply").

const RATEABLE = new Set(["complete", "stopped"]);

// A reply the user wrote themselves: a sibling of the model's, never rated.
export const isWritten = (message) => message.role === "assistant" && message.written_by === "user";

export const isRateable = (message) => message.role === "assistant" && !isWritten(message) && RATEABLE.has(message.status);

export class MessageTree {
  constructor() {
    this.messages = new Map(); // id -> message object (docs/protocol.md)
    this.chosen = new Map(); // parent id (null for the first turn) -> chosen child id
    this.ratings = new Map(); // reply id -> rating object (docs/protocol.md)
    this.preferences = new Map(); // user message id -> id of the reply marked better
    this.written = new Map(); // rated reply id -> id of the reply the user wrote instead
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

  // The feedback part of a conversation read over HTTP replaces what we had.
  setFeedback({ ratings = {}, preferences = {}, written = {} }) {
    this.ratings = new Map(Object.entries(ratings).map(([id, rating]) => [Number(id), rating]));
    this.preferences = new Map(Object.entries(preferences).map(([id, chosen]) => [Number(id), chosen]));
    this.written = new Map(Object.entries(written).map(([id, reply]) => [Number(id), reply]));
  }

  setWritten(ratedId, replyId) {
    this.written.set(ratedId, replyId);
  }

  rating(replyId) {
    return this.ratings.get(replyId) ?? null;
  }

  setRating(replyId, rating) {
    if (rating) this.ratings.set(replyId, rating);
    else this.ratings.delete(replyId);
  }

  preferred(userMessageId) {
    return this.preferences.get(userMessageId) ?? null;
  }

  setPreferred(userMessageId, replyId) {
    if (replyId) this.preferences.set(userMessageId, replyId);
    else this.preferences.delete(userMessageId);
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

  // [{message, index, count, rating, preferred, canPrefer, written}] from the first
  // turn down the chosen children.
  branch() {
    const children = this.childrenByParent();
    const path = [];
    let parent = null;
    while (children.has(parent)) {
      const siblings = children.get(parent);
      const wanted = this.chosen.get(parent);
      const message = siblings.find((item) => item.id === wanted) ?? siblings.at(-1);
      path.push({ message, index: siblings.indexOf(message), count: siblings.length, ...this.feedbackOf(message, siblings) });
      parent = message.id;
    }
    return path;
  }

  // A reply can be marked better when it and at least one sibling are finished.
  feedbackOf(message, siblings) {
    const canPrefer = isRateable(message) && siblings.some((other) => other !== message && isRateable(other));
    const preferred = message.role === "assistant" && this.preferred(message.parent) === message.id;
    const written = this.messages.get(this.written.get(message.id)) ?? null;
    return { rating: this.rating(message.id), preferred, canPrefer, written };
  }

  // The id a new user message follows: the last visible assistant reply.
  lastReplyId() {
    const replies = this.branch().filter(({ message }) => message.role === "assistant");
    return replies.at(-1)?.message.id ?? null;
  }
}
