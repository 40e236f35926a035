// Messages and events: the newest messages with their state, what each held message
// waits for, and the node's live event stream. Reads GET /api/v1/messages,
// /api/v1/messages/{id}/blocked-by, /api/v1/events and the /api/v1/ws WebSocket.

import { getJSON } from "../api.js";
import { chip, h, replace, s, svgCanvas, table } from "../dom.js";
import { plural, short, timeOfIso, timeOfUs } from "../format.js";
import { Panel } from "../panel.js";

const SHOWN = 60;
const PAGE = 1000;
const HELD = 20;
const BLOCKERS = 8;
const STATES = ["pending", "sent", "confirmed", "failed", "rejected"];

export function messagesView(stream) {
  const messages = new Panel(
    "Messages",
    "The newest messages this node stored or received. pending: not yet in a batch; " +
      "sent: batched (on a receiver: arrived); confirmed: released in ledger order; failed.",
  );
  const held = new Panel("Held messages", "Messages not yet confirmed, oldest first, with what each waits for.");
  const live = new Panel(
    "Live events",
    "Events as the node appends them, over a WebSocket subscription that lives only as long as this page.",
  );
  const streamState = h("p", { class: "stream-state", role: "status" });
  const rate = h("div", { class: "rate" });
  const eventList = h("ol", { class: "events", id: "event-list", "aria-label": "Events, newest first" });
  live.body.append(streamState, rate, eventList);
  const element = h("div", { class: "view-grid" }, messages.element, held.element, live.element);
  let anchor = null;

  async function findAnchor() {
    // a recent message offset: from the newest message event, else from the start of the list
    const recent = stream.events.find((e) => e.reference && e.type.startsWith("message_"));
    if (recent) {
      try {
        const m = await getJSON(`/api/v1/messages/${encodeURIComponent(recent.reference)}`);
        return Number(m.offset);
      } catch (err) {
        if (err.status !== 404) throw err;
      }
    }
    let after = 0;
    for (let page = 0; page < 5; page++) {
      const doc = await getJSON("/api/v1/messages", { after, limit: PAGE });
      if (!doc.items.length) break;
      after = Number(doc.next);
      if (doc.items.length < PAGE) break;
    }
    return after;
  }

  async function newest() {
    if (anchor === null) anchor = await findAnchor();
    const doc = await getJSON("/api/v1/messages", { after: Math.max(0, anchor - SHOWN), limit: PAGE });
    if (doc.items.length) anchor = Math.max(anchor, Number(doc.next));
    return doc.items.slice(-SHOWN).reverse();
  }

  function drawEvents() {
    const label = { connecting: "connecting…", live: "live", closed: "disconnected" }[stream.state] || stream.state;
    replace(
      streamState,
      chip(label, stream.state === "live" ? "ok" : stream.state === "closed" ? "bad" : "muted"),
      " ",
      stream.detail,
      ` · ${plural(stream.events.length, "event")} shown`,
    );
    replace(rate, rateChart(stream.arrivals));
    replace(
      eventList,
      stream.events.slice(0, 150).map((e) =>
        h(
          "li",
          { "data-type": e.type, "data-reference": e.reference || "", "data-offset": e.offset, class: e.live ? "live" : "" },
          h("span", { class: "offset num" }, `#${e.offset}`),
          h("span", {}, chip(e.type, eventKind(e.type))),
          h("span", {}, e.topic ? h("code", {}, e.topic) : ""),
          h("span", { class: "small" }, e.reference ? h("code", { title: e.reference }, short(e.reference, 12)) : ""),
          h("span", { class: "small" }, e.tx_id ? h("code", {}, `tx ${e.tx_id}`) : ""),
          h("span", { class: "small muted" }, e.author ? `by ${e.author}` : ""),
          h("time", { class: "small muted", datetime: e.created || "" }, timeOfIso(e.created)),
          h("span", { class: "small muted" }, e.live ? "live" : "from the log"),
        ),
      ),
    );
  }
  stream.subscribe(() => {
    if (element.isConnected) drawEvents();
  });

  async function refresh() {
    drawEvents();
    await messages.run(async (body) => {
      const items = await newest();
      replace(
        body,
        items.length ? stateBar(items) : null,
        items.length
          ? table(
              "Newest messages first",
              ["state", "type", "topic", "author", "group", "created", "confirmed", "pin"],
              items.map(messageRow),
              { class: "grid", id: "message-table" },
            )
          : h("p", { class: "muted" }, "No message yet."),
      );
    });
    await held.run(async (body) => {
      const [pending, sent] = await Promise.all([
        getJSON("/api/v1/messages", { state: "pending", limit: HELD }),
        getJSON("/api/v1/messages", { state: "sent", limit: HELD }),
      ]);
      const waiting = [...pending.items, ...sent.items].sort((a, b) => Number(a.offset) - Number(b.offset));
      if (!waiting.length) {
        replace(body, h("p", { class: "muted" }, "Nothing is held: every message here is confirmed or failed."));
        return;
      }
      const reasons = await Promise.all(
        waiting.slice(0, BLOCKERS).map((m) =>
          getJSON(`/api/v1/messages/${encodeURIComponent(m.id)}/blocked-by`).catch((err) => ({ error: err.message })),
        ),
      );
      replace(
        body,
        h(
          "ul",
          { class: "held" },
          waiting.map((m, i) => heldItem(m, reasons[i])),
        ),
      );
    });
  }

  return { id: "messages", title: "Messages & events", refreshMs: 2000, element, refresh };
}

function eventKind(type) {
  if (type.endsWith("_failed") || type.endsWith("_rejected")) return "bad";
  if (type.endsWith("_confirmed")) return "ok";
  return "info";
}

function messageRow(m) {
  return h(
    "tr",
    { "data-message-id": m.id, "data-state": m.state },
    h("td", {}, chip(m.state, `state-${m.state}`), m.reason ? h("div", { class: "small bad-text" }, m.reason) : null),
    h("td", {}, m.type),
    h("td", {}, m.topic ? h("code", {}, m.topic) : h("span", { class: "muted" }, "—")),
    h("td", {}, m.author.member, h("div", { class: "small muted" }, m.author.node)),
    h("td", { class: "small" }, m.type === "broadcast" || !m.group ? "every member" : h("code", { title: m.group }, short(m.group, 10))),
    h("td", { class: "small" }, timeOfUs(m.created_us)),
    h("td", { class: "small" }, m.confirmed_us ? timeOfUs(m.confirmed_us) : "—"),
    h("td", { class: "small" }, m.pin ? h("code", {}, m.pin.tx_id || `seqno ${m.pin.seqno}`) : "—"),
  );
}

function heldItem(m, why) {
  let reason;
  if (!why) reason = h("span", { class: "muted" }, "(not asked: only the oldest are shown in detail)");
  else if (why.error) reason = h("span", { class: "bad-text" }, why.error);
  else if (!why.blocked) reason = h("span", {}, `no longer held (${why.state})`);
  else {
    const b = why.blocker;
    reason = h(
      "span",
      {},
      "waits for ",
      h("strong", {}, why.waiting_for),
      why.detail ? ` (${why.detail})` : "",
      why.pin ? h("span", {}, " · its pin ", h("code", {}, why.pin.tx_id)) : null,
      b
        ? h(
            "span",
            {},
            " · behind ",
            b.message_id ? h("code", { title: b.message_id }, short(b.message_id, 10)) : "a message",
            ` of node ${b.node}`,
            b.tx_id ? h("span", {}, " pinned in ", h("code", {}, b.tx_id)) : null,
            b.batch ? h("span", {}, " · batch ", h("code", { title: b.batch }, short(b.batch, 10))) : null,
            b.blobs && b.blobs.length ? ` · ${plural(b.blobs.length, "blob")} missing` : "",
          )
        : null,
      why.deadline_us ? ` · fails at ${timeOfUs(why.deadline_us)} if still missing` : "",
    );
  }
  return h(
    "li",
    { "data-message-id": m.id },
    chip(m.state, `state-${m.state}`),
    " ",
    h("code", { title: m.id }, short(m.id, 10)),
    m.topic ? h("span", {}, " on ", h("code", {}, m.topic)) : null,
    h("span", { class: "muted" }, ` by ${m.author.member}: `),
    reason,
  );
}

function stateBar(items) {
  const counts = Object.fromEntries(STATES.map((st) => [st, 0]));
  for (const m of items) counts[m.state] = (counts[m.state] || 0) + 1;
  const total = items.length;
  const W = 600;
  let x = 0;
  const parts = [];
  for (const st of STATES) {
    if (!counts[st]) continue;
    const w = (counts[st] / total) * W;
    parts.push(s("rect", { class: `bar state-${st}`, x, y: 0, width: w, height: 22 }, s("title", { text: `${st}: ${counts[st]}` })));
    if (w > 60) parts.push(s("text", { class: "bar-label", x: x + 6, y: 15, text: `${st} ${counts[st]}` }));
    x += w;
  }
  const label = STATES.filter((st) => counts[st]).map((st) => `${counts[st]} ${st}`).join(", ");
  return h("div", { class: "statebar" }, svgCanvas(W, 22, `States of the ${total} newest messages: ${label}`, ...parts));
}

function rateChart(arrivals) {
  const now = Date.now();
  const buckets = new Array(60).fill(0);
  for (const t of arrivals) {
    const age = Math.floor((now - t) / 1000);
    if (age >= 0 && age < 60) buckets[59 - age] += 1;
  }
  const max = Math.max(1, ...buckets);
  const W = 600;
  const H = 48;
  const bw = W / 60;
  const bars = buckets.map((n, i) =>
    n ? s("rect", { class: "rate-bar", x: i * bw + 1, y: H - (n / max) * (H - 10), width: bw - 2, height: (n / max) * (H - 10) }) : null,
  );
  const total = buckets.reduce((a, b) => a + b, 0);
  return svgCanvas(
    W,
    H,
    `${total} live events in the last minute, at most ${max} in one second`,
    s("line", { class: "axis-line", x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }),
    ...bars,
    s("text", { class: "axis", x: 2, y: 10, text: `${total} events in the last 60 s (peak ${max}/s)` }),
  );
}
