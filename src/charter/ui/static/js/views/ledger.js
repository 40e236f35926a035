// The ledger: a timeline of the newest transactions, one lane per kind, with the span
// each signature transaction signs; then the list with statuses and receipt links.
// Reads GET /api/v1/explorer/transactions.

import { getJSON } from "../api.js";
import { chip, h, replace, s, svgCanvas, table } from "../dom.js";
import { plural, short, timeOfUs } from "../format.js";
import { Panel } from "../panel.js";

const WINDOW = 120;
const LANES = ["governance", "tokens", "mp", "write", "other", "snapshot", "malformed", "signature"];
const LANE_NAMES = {
  governance: "governance",
  tokens: "tokens",
  mp: "mp pins",
  write: "writes",
  other: "other apps",
  snapshot: "snapshots",
  malformed: "malformed",
  signature: "signatures",
};
const W = 980;
const LABEL_W = 104;
const LANE_H = 26;

export function ledgerView() {
  const timeline = new Panel(
    "Timeline",
    "Oldest on the left. A filled block is Committed, an outlined one Pending, a crossed red one " +
      "Invalid. Green brackets show the transactions each signature transaction signs.",
  );
  const list = new Panel(
    "Transactions",
    "Newest first. Sent is the submitting node's batch clock (for a signature: when this node applied it).",
  );
  const hidden = new Set();
  const filters = h("fieldset", { class: "filters" }, h("legend", {}, "Show kinds"));
  for (const kind of LANES) {
    const box = h("input", { type: "checkbox", checked: true, id: `kind-${kind}`, value: kind });
    box.addEventListener("change", () => {
      if (box.checked) hidden.delete(kind);
      else hidden.add(kind);
      if (last) drawList(last);
    });
    filters.append(h("label", { for: `kind-${kind}` }, box, LANE_NAMES[kind]));
  }
  const listBody = h("div", { class: "scroll tall" });
  list.body.append(filters, listBody);
  const element = h("div", { class: "view-grid" }, timeline.element, list.element);
  let last = null;

  function drawList(doc) {
    const rows = doc.items.filter((t) => !hidden.has(t.kind)).map(row);
    replace(
      listBody,
      rows.length
        ? table(
            "Newest transactions first",
            ["seqno", "tx id", "kind", "what", "status", "submitter", "sent", "receipt"],
            rows,
            { class: "grid", id: "ledger-table" },
          )
        : h("p", { class: "muted" }, "No transaction of the kinds shown."),
    );
  }

  async function refresh() {
    let doc = null;
    const ok = await timeline.run(async (body) => {
      doc = await getJSON("/api/v1/explorer/transactions", { limit: WINDOW });
      last = doc;
      replace(body, summary(doc), drawTimeline(doc, (txId) => highlight(listBody, txId)));
    });
    if (!ok) {
      list.fail("the transaction list is unavailable");
      return;
    }
    await list.run(async () => drawList(doc));
  }

  return { id: "ledger", title: "Ledger", refreshMs: 2000, element, refresh };
}

function summary(doc) {
  const pending = doc.items.filter((t) => t.status === "Pending").length;
  const invalid = doc.items.filter((t) => t.status === "Invalid").length;
  return h(
    "p",
    { class: "facts" },
    h("span", {}, "last seqno ", h("strong", {}, String(doc.last_seqno))),
    h("span", {}, "signed below ", h("strong", {}, String(doc.signed_upto))),
    h("span", {}, plural(pending, "pending transaction"), " shown"),
    invalid ? h("span", {}, plural(invalid, "invalid transaction"), " shown") : null,
    h(
      "span",
      { class: "muted" },
      doc.oldest_held !== null
        ? `held since seqno ${doc.oldest_held} (the newest ${doc.capacity} this node applied)`
        : "nothing applied since this node started",
    ),
  );
}

function drawTimeline(doc, onPick) {
  const txs = doc.items.slice().reverse();
  if (!txs.length) return h("p", { class: "muted" }, "No transaction applied since this node started.");
  const present = new Set(txs.map((t) => t.kind));
  const lanes = LANES.filter((k) => present.has(k));
  const cell = Math.max(4, Math.min(22, (W - LABEL_W - 12) / txs.length));
  const xOf = new Map(txs.map((t, i) => [t.seqno, LABEL_W + i * cell]));
  const laneTop = 34;
  const height = laneTop + lanes.length * LANE_H + 34;
  const parts = [];
  lanes.forEach((kind, i) => {
    const y = laneTop + i * LANE_H;
    parts.push(
      s("rect", { class: `lane ${i % 2 ? "odd" : ""}`, x: 0, y, width: W, height: LANE_H }),
      s("text", { class: "lane-label", x: LABEL_W - 8, y: y + LANE_H / 2 + 4, "text-anchor": "end", text: LANE_NAMES[kind] }),
    );
  });
  const laneY = (kind) => laneTop + lanes.indexOf(kind) * LANE_H;
  // signature brackets: what each signature newly signs, drawn above the lanes
  let level = 0;
  for (const t of txs) {
    if (t.kind !== "signature" || !t.covers) continue;
    const from = t.covers.from ?? txs[0].seqno;
    const upto = t.covers.upto;
    const xs = txs.filter((u) => u.seqno >= from && u.seqno < upto).map((u) => xOf.get(u.seqno));
    const sx = xOf.get(t.seqno) + cell / 2;
    if (!xs.length) continue;
    const x1 = Math.min(...xs) + 1;
    const x2 = Math.max(...xs) + cell - 1;
    const y = 10 + (level % 2) * 10;
    level += 1;
    parts.push(
      s(
        "g",
        { class: "bracket", "data-signature": t.tx_id },
        s("title", { text: `${t.tx_id} signs seqnos ${from} to ${upto - 1} (signed by node ${short(t.covers.signer, 12)})` }),
        s("path", { d: `M${x1} ${y + 6} V${y} H${x2} V${y + 6}` }),
        s("path", { class: "bracket-stem", d: `M${sx} ${y} V${laneY("signature") + 4}` }),
      ),
    );
  }
  for (const t of txs) {
    const x = xOf.get(t.seqno);
    const y = laneY(t.kind) + 4;
    const w = Math.max(2, cell - 2);
    const hgt = LANE_H - 8;
    const label = `${t.tx_id} · ${t.kind} · ${t.summary || ""} · ${t.status}${t.reason ? ` (${t.reason})` : ""}`;
    const g = s(
      "g",
      { class: `tx kind-${t.kind} status-${t.status}`, "data-tx-id": t.tx_id, tabindex: "-1" },
      s("title", { text: label }),
      t.kind === "signature"
        ? s("path", { class: "mark", d: `M${x + w / 2 + 1} ${y} l${w / 2} ${hgt / 2} l${-w / 2} ${hgt / 2} l${-w / 2} ${-hgt / 2} z` })
        : s("rect", { class: "mark", x: x + 1, y, width: w, height: hgt, rx: 2 }),
      t.status === "Invalid"
        ? s("path", { class: "cross", d: `M${x + 2} ${y + 1} L${x + w} ${y + hgt - 1} M${x + w} ${y + 1} L${x + 2} ${y + hgt - 1}` })
        : null,
    );
    g.addEventListener("click", () => onPick(t.tx_id));
    parts.push(g);
  }
  const axisY = laneTop + lanes.length * LANE_H + 16;
  const step = Math.max(1, Math.ceil(60 / cell));
  txs.forEach((t, i) => {
    if (i % step === 0 || i === txs.length - 1) {
      parts.push(s("text", { class: "axis", x: xOf.get(t.seqno) + cell / 2, y: axisY, "text-anchor": "middle", text: String(t.seqno) }));
    }
  });
  parts.push(s("text", { class: "axis muted", x: 4, y: axisY, text: "seqno" }));
  const label = `Timeline of the ${txs.length} newest transactions, seqno ${txs[0].seqno} to ${txs[txs.length - 1].seqno}`;
  return svgCanvas(W, height, label, ...parts);
}

function highlight(container, txId) {
  for (const old of container.querySelectorAll("tr.picked")) old.classList.remove("picked");
  const row = container.querySelector(`tr[data-tx-id="${CSS.escape(txId)}"]`);
  if (row) {
    row.classList.add("picked");
    row.scrollIntoView({ block: "nearest" });
  }
}

function row(t) {
  const status = h(
    "td",
    {},
    chip(t.status, `status-${t.status}`),
    t.reason ? h("div", { class: "small bad-text" }, t.reason) : null,
  );
  let what = t.summary || "";
  if (t.kind === "signature" && t.covers) {
    what = `signs seqnos ${t.covers.from ?? "…"}–${t.covers.upto - 1}`;
  }
  return h(
    "tr",
    { "data-tx-id": t.tx_id, "data-kind": t.kind, "data-status": t.status },
    h("td", { class: "num" }, String(t.seqno)),
    h("td", {}, h("code", {}, t.tx_id)),
    h("td", {}, chip(LANE_NAMES[t.kind] || t.kind, `kind-${t.kind}`)),
    h("td", {}, what, t.client_ref ? h("div", { class: "small muted" }, `ref ${short(t.client_ref, 24)}`) : null),
    status,
    h("td", { class: "nowrap" }, t.submitter || "—", t.member ? h("div", { class: "small muted" }, t.member) : null),
    h(
      "td",
      { class: "small", title: `applied here at ${timeOfUs(t.applied_us)}` },
      t.batch_us ? timeOfUs(t.batch_us) : timeOfUs(t.applied_us),
    ),
    h(
      "td",
      {},
      t.receipt
        ? h("a", { href: t.receipt, target: "_blank", rel: "noopener", "aria-label": `JSON receipt of ${t.tx_id}` }, "receipt")
        : h("span", { class: "muted" }, "—"),
    ),
  );
}
