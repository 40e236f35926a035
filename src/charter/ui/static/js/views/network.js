// The network: every node as a circle (role, term, indexes, lag, readiness) and the
// links each node reports to its peers. Reads GET /api/v1/explorer/network.

import { getJSON } from "../api.js";
import { chip, h, replace, s, svgCanvas, table } from "../dom.js";
import { num } from "../format.js";
import { Panel } from "../panel.js";

const W = 820;
const H = 420;
const R = 46;

export function networkView() {
  const graph = new Panel(
    "Nodes and links",
    "Each circle is a node, coloured by its Raft role; a line is a live link between two nodes " +
      "(dashed when only one side reports it, red dotted when two voters have none).",
  );
  const details = new Panel("Node details");
  const element = h("div", { class: "view-grid" }, graph.element, details.element);

  async function refresh() {
    let doc = null;
    const ok = await graph.run(async (body) => {
      doc = await getJSON("/api/v1/explorer/network");
      replace(body, drawGraph(doc), legend());
    });
    if (!ok) {
      details.fail("the network view is unavailable");
      return;
    }
    await details.run(async (body) => replace(body, detailTable(doc)));
  }

  return { id: "network", title: "Network", refreshMs: 1500, element, refresh };
}

function roleOf(node) {
  if (node.reachable === false) return "unreachable";
  if (node.reachable === null) return "unknown";
  return node.role || "unknown";
}

function positions(nodes) {
  const n = nodes.length;
  const cx = W / 2;
  const cy = H / 2 + 10;
  if (n === 1) return [[cx, cy]];
  const ry = H / 2 - R - 24;
  const rx = ry; // side labels need about 200 px beyond each outer circle
  return nodes.map((_, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / n;
    return [cx + rx * Math.cos(angle), cy + ry * Math.sin(angle)];
  });
}

function drawGraph(doc) {
  const nodes = doc.nodes;
  const at = new Map();
  positions(nodes).forEach((p, i) => at.set(nodes[i].raft_id, p));
  const linkLayer = s("g", { class: "links" });
  const linked = new Set();
  for (const link of doc.links) {
    const a = at.get(link.a);
    const b = at.get(link.b);
    if (!a || !b) continue;
    linked.add(`${link.a}-${link.b}`);
    linkLayer.append(
      edge(a, b, link.both ? "link" : "link one-way", `${nameOf(doc, link.a)} ↔ ${nameOf(doc, link.b)}`),
    );
  }
  // voters that could talk (both answered) but report no link: a broken link
  const reachable = nodes.filter((n) => n.reachable && n.raft === "voter");
  for (let i = 0; i < reachable.length; i++) {
    for (let j = i + 1; j < reachable.length; j++) {
      const [x, y] = [reachable[i].raft_id, reachable[j].raft_id].sort((p, q) => p - q);
      if (linked.has(`${x}-${y}`)) continue;
      linkLayer.append(
        edge(at.get(x), at.get(y), "link broken", `no link between ${nameOf(doc, x)} and ${nameOf(doc, y)}`),
      );
    }
  }
  const nodeLayer = s("g", { class: "nodes" });
  for (const node of nodes) nodeLayer.append(drawNode(node, at.get(node.raft_id)));
  const leaders = nodes.filter((n) => roleOf(n) === "leader").length;
  const label =
    `Network of ${nodes.length} nodes as ${doc.observer} sees it: ` +
    `${leaders === 1 ? "one leader" : `${leaders} leaders`}, term ${doc.term}`;
  return svgCanvas(W, H, label, linkLayer, nodeLayer);
}

function nameOf(doc, raftId) {
  const node = doc.nodes.find((n) => n.raft_id === raftId);
  return node ? node.name : String(raftId);
}

function edge(a, b, cls, label) {
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  const len = Math.hypot(dx, dy) || 1;
  const [ux, uy] = [dx / len, dy / len];
  return s(
    "line",
    {
      class: cls,
      x1: a[0] + ux * (R + 4),
      y1: a[1] + uy * (R + 4),
      x2: b[0] - ux * (R + 4),
      y2: b[1] - uy * (R + 4),
    },
    s("title", { text: label }),
  );
}

function drawNode(node, [x, y]) {
  const role = roleOf(node);
  const ready = node.ready === true ? "ready" : node.ready === false ? "not-ready" : "ready-unknown";
  const lines = [
    node.member ? `member ${node.member}` : "",
    node.commit_index !== null ? `commit ${node.commit_index} · applied ${num(node.applied_index)}` : "",
    node.lag !== null ? `lag ${node.lag}` : node.error ? "no answer" : "",
  ].filter(Boolean);
  const title =
    `${node.name}: ${role}` +
    (node.term !== null ? `, term ${node.term}` : "") +
    (node.ready === false ? `, not ready (${node.reasons.join("; ")})` : node.ready ? ", ready" : "") +
    (node.error ? `, ${node.error}` : "");
  return s(
    "g",
    {
      class: `node role-${role}${node.self ? " self" : ""}`,
      "data-name": node.name,
      "data-role": role,
      "data-ready": String(node.ready),
      transform: `translate(${x} ${y})`,
    },
    s("title", { text: title }),
    s("circle", { r: R, class: "node-disc" }),
    node.self ? s("circle", { r: R + 6, class: "node-self-ring" }) : null,
    s("text", { class: `node-role${role.length > 9 ? " long" : ""}`, y: -4, "text-anchor": "middle", text: role }),
    s("text", {
      class: "node-term",
      y: 14,
      "text-anchor": "middle",
      text: node.term !== null ? `term ${node.term}` : node.raft || "",
    }),
    s("circle", { class: `node-ready ${ready}`, cx: R * 0.72, cy: -R * 0.72, r: 8 }),
    sideText(node.name, lines, x < W / 2 - 1),
  );
}

/** The name and facts beside the circle, on the side away from the middle. */
function sideText(name, lines, left) {
  const anchor = left ? "end" : "start";
  const x = left ? -R - 12 : R + 12;
  const top = -8 - (lines.length * 15) / 2;
  return s(
    "g",
    { class: "node-text" },
    s("text", { class: "node-name", x, y: top, "text-anchor": anchor, text: name }),
    lines.map((line, i) =>
      s("text", { class: "node-line", x, y: top + 17 + i * 15, "text-anchor": anchor, text: line }),
    ),
  );
}

function legend() {
  const item = (cls, text) => h("li", {}, h("span", { class: `swatch ${cls}`, "aria-hidden": "true" }), text);
  return h(
    "ul",
    { class: "legend", "aria-label": "Legend" },
    item("role-leader", "leader"),
    item("role-follower", "follower"),
    item("role-learner", "learner"),
    item("role-candidate", "candidate"),
    item("role-unreachable", "unreachable"),
    item("self", "this node"),
    item("ready", "ready"),
    item("not-ready", "not ready"),
  );
}

function detailTable(doc) {
  const maxLag = Math.max(1, ...doc.nodes.map((n) => n.lag || 0));
  const rows = doc.nodes.map((n) => {
    const role = roleOf(n);
    const lagBar = s(
      "svg",
      { class: "lagbar", width: 60, height: 8, viewBox: "0 0 60 8", "aria-hidden": "true" },
      s("rect", { class: "lag-track", x: 0, y: 0, width: 60, height: 8, rx: 4 }),
      s("rect", { class: "lag-fill", x: 0, y: 0, width: Math.max(n.lag ? 3 : 0, ((n.lag || 0) / maxLag) * 60), height: 8, rx: 4 }),
    );
    return h(
      "tr",
      { "data-name": n.name, "data-role": role },
      h("th", { scope: "row" }, n.name, n.self ? h("span", { class: "muted" }, " (this node)") : null),
      h("td", {}, n.member || "—"),
      h("td", {}, chip(role, `role-${role}`)),
      h("td", {}, n.raft || "—", n.status && n.status !== "trusted" ? ` (${n.status})` : ""),
      h("td", { class: "num" }, num(n.term)),
      h("td", { class: "num" }, num(n.commit_index)),
      h("td", { class: "num" }, num(n.applied_index)),
      h("td", { class: "num" }, num(n.signed_upto)),
      h("td", { class: "num" }, num(n.lag), " ", n.lag !== null ? lagBar : null),
      h(
        "td",
        {},
        n.ready === true ? chip("ready", "ok") : n.ready === false ? chip("not ready", "bad") : chip("unknown", "muted"),
        n.reasons && n.reasons.length ? h("div", { class: "small" }, n.reasons.join("; ")) : null,
      ),
      h("td", { class: "num" }, n.reachable ? `${n.connected_peers.length}/${n.peers.length}` : "—"),
      h("td", { class: "small" }, n.error ? h("span", { class: "bad-text" }, n.error) : n.api_url || "—"),
    );
  });
  return h(
    "div",
    { class: "scroll" },
    table(
      "Every node of the network",
      ["node", "member", "role", "raft", "term", "commit", "applied", "signed below", "lag", "ready", "links", "API / error"],
      rows,
      { class: "grid", id: "network-table" },
    ),
    h(
      "p",
      { class: "small muted" },
      `As seen by ${doc.observer}. Voters: ${doc.voters.length}, learners: ${doc.learners.length}. ` +
        "Lag is how many log entries a node has still to apply behind the leader.",
    ),
  );
}
