// The one websocket (docs/protocol.md). Reconnects with exponential backoff.

const UNAUTHENTICATED = 4401;
const MAX_DELAY_MS = 15000;

export class ChatSocket {
  constructor(path, { onFrame, onStatus }) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.url = `${scheme}://${location.host}${path}`;
    this.onFrame = onFrame;
    this.onStatus = onStatus; // "connecting" | "open" | "closed" | "unauthenticated"
    this.attempts = 0;
    this.socket = null;
    this.timer = null;
    window.addEventListener("online", () => this.reconnectNow());
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  connect() {
    clearTimeout(this.timer);
    this.onStatus("connecting");
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempts = 0;
      this.onStatus("open");
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", (event) => this.closed(socket, event.code));
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // The server only sends JSON; ignore anything else.
    }
    if (frame && typeof frame.type === "string") this.onFrame(frame);
  }

  closed(socket, code) {
    if (socket !== this.socket) return;
    this.socket = null;
    if (code === UNAUTHENTICATED) {
      this.onStatus("unauthenticated");
      return;
    }
    this.onStatus("closed");
    // 0.5 s, 1 s, 2 s … up to 15 s, with jitter so many tabs do not stampede.
    const delay = Math.min(MAX_DELAY_MS, 500 * 2 ** this.attempts) * (0.75 + Math.random() / 2);
    this.attempts += 1;
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.socket === null) this.connect();
  }
}
