// The node's live event stream over GET /api/v1/ws, as an ephemeral subscription:
// nothing is stored on the node for it and it ends with the connection, so closing the
// page leaves nothing behind. Events are acknowledged as they are sent (autoack), as a
// dashboard should: the page shows them, it does not process them.

import { getJSON } from "./api.js";

const BACKFILL = 50;
const MAX_KEPT = 300;

export class EventStream {
  constructor() {
    this.events = []; // newest first
    this.seen = new Set();
    this.state = "connecting";
    this.detail = "";
    this.lastOffset = null;
    this.listeners = new Set();
    this.socket = null;
    this.closed = false;
    this.retryMs = 1000;
    this.timer = null;
    this.arrivals = []; // arrival times (ms) of live events, for the rate chart
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify() {
    for (const listener of this.listeners) {
      try {
        listener(this);
      } catch (err) {
        console.warn("event listener failed", err);
      }
    }
  }

  start() {
    if (this.closed || this.socket) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let socket;
    try {
      socket = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    } catch (err) {
      this.setState("closed", String(err));
      this.retry();
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      const resume = this.lastOffset === null ? "newest" : String(this.lastOffset + 1);
      socket.send(
        JSON.stringify({
          type: "start",
          ephemeral: true,
          first_event: resume,
          autoack: true,
          read_ahead: 100,
          with_data: false,
        }),
      );
    });
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", () => {
      this.socket = null;
      if (this.closed) return;
      if (opened) this.retryMs = 1000;
      this.setState("closed", this.detail || "the connection closed");
      this.retry();
    });
  }

  retry() {
    if (this.closed || this.timer) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(30000, this.retryMs * 2);
    this.detail = `${this.detail ? `${this.detail}; ` : ""}retrying in ${Math.round(wait / 1000)} s`;
    this.notify();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.detail = "";
      this.setState("connecting", "");
      this.start();
    }, wait);
  }

  stop() {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "page closed");
    this.socket = null;
  }

  /** Start again after stop() (a page restored from the back-forward cache). */
  resume() {
    this.closed = false;
    this.retryMs = 1000;
    this.start();
  }

  setState(state, detail) {
    this.state = state;
    this.detail = detail;
    this.notify();
  }

  receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame.type === "started") {
      const offset = Number(frame.offset);
      const first = this.lastOffset === null;
      this.setState("live", "");
      if (first) this.backfill(offset);
    } else if (frame.type === "event" && frame.event) {
      this.add(frame.event, true);
      this.notify();
    } else if (frame.type === "error") {
      this.detail = `${frame.code}: ${frame.detail || ""}`;
    }
  }

  async backfill(offset) {
    const after = Math.max(0, offset - BACKFILL);
    try {
      const older = await getJSON("/api/v1/events", { after, limit: BACKFILL });
      for (const event of older) {
        if (Number(event.offset) <= offset) this.add(event, false);
      }
      this.sort();
      this.notify();
    } catch (err) {
      this.detail = `the log's recent events could not be read: ${err.message}`;
      this.notify();
    }
  }

  add(event, live) {
    if (this.seen.has(event.id)) return;
    this.seen.add(event.id);
    event.live = live;
    this.events.unshift(event);
    const offset = Number(event.offset);
    if (this.lastOffset === null || offset > this.lastOffset) this.lastOffset = offset;
    if (live) this.arrivals.push(Date.now());
    if (this.events.length > MAX_KEPT) {
      for (const old of this.events.splice(MAX_KEPT)) this.seen.delete(old.id);
    }
    const horizon = Date.now() - 60000;
    while (this.arrivals.length && this.arrivals[0] < horizon) this.arrivals.shift();
    if (!live) this.sort();
  }

  sort() {
    this.events.sort((a, b) => Number(b.offset) - Number(a.offset));
  }
}
