// A titled section of a view. Whatever fails while it refreshes is shown in the
// panel itself, in words, and the panel keeps its last good drawing (marked stale).

import { ApiError } from "./api.js";
import { h } from "./dom.js";

let counter = 0;

export class Panel {
  constructor(title, note = "") {
    counter += 1;
    const headingId = `panel-${counter}`;
    this.heading = h("h2", { id: headingId }, title);
    this.stamp = h("span", { class: "stamp", "aria-live": "off" });
    this.error = h("p", { class: "panel-error", role: "status", hidden: true });
    this.body = h("div", { class: "panel-body" });
    this.element = h(
      "section",
      { class: "panel", "aria-labelledby": headingId },
      h("header", { class: "panel-head" }, this.heading, this.stamp),
      note ? h("p", { class: "panel-note" }, note) : null,
      this.error,
      this.body,
    );
  }

  /** Run one refresh; an error is shown, never thrown. Returns true on success. */
  async run(draw) {
    try {
      await draw(this.body);
      this.error.hidden = true;
      this.error.textContent = "";
      this.element.classList.remove("stale");
      this.stamp.textContent = `updated ${new Date().toLocaleTimeString([], { hour12: false })}`;
      return true;
    } catch (err) {
      this.fail(err);
      return false;
    }
  }

  fail(err) {
    // a node's refusal is expected and shown; anything else is a fault worth a warning
    if (err instanceof Error && !(err instanceof ApiError)) console.warn("explorer panel failed", err);
    const message = err && err.message ? err.message : String(err);
    this.error.textContent = `Could not load: ${message}`;
    this.error.hidden = false;
    this.element.classList.add("stale");
  }
}
