// Governance: proposals with their ballots drawn against the threshold, the members,
// the nodes, a joining node's progress and the rules in force. Reads
// GET /api/v1/explorer/proposals, /api/v1/gov/members, /api/v1/gov/nodes,
// /api/v1/gov/constitution and /api/v1/membership.

import { getJSON } from "../api.js";
import { chip, h, replace, s, svgCanvas, table } from "../dom.js";
import { plural, short } from "../format.js";
import { Panel } from "../panel.js";

const W = 600;

export function governanceView() {
  const proposals = new Panel(
    "Proposals",
    "Green: ballots for, from the left; red: against, from the right. The line marks the " +
      "for-ballots needed under the rules in force now.",
  );
  const joining = new Panel("Joining nodes", "Nodes that asked to join, and how far a learner has caught up.");
  const members = new Panel("Members");
  const nodes = new Panel("Nodes");
  const rules = new Panel("Rules in force");
  const element = h(
    "div",
    { class: "view-grid" },
    proposals.element,
    joining.element,
    h("div", { class: "two-col" }, members.element, rules.element),
    nodes.element,
  );

  async function refresh() {
    await proposals.run(async (body) => {
      const doc = await getJSON("/api/v1/explorer/proposals", { limit: 50 });
      if (!doc.bootstrapped) {
        replace(body, h("p", { class: "muted" }, "Governance is not bootstrapped yet."));
        return;
      }
      const open = doc.items.filter((p) => p.state === "open");
      const decided = doc.items.filter((p) => p.state !== "open");
      replace(
        body,
        h("p", { class: "facts" }, `${plural(doc.total, "proposal")} in all, ${open.length} of the newest ${doc.items.length} open; ${plural(doc.voters, "voting member")}.`),
        open.length ? h("h3", {}, "Open") : null,
        open.map(proposalCard),
        decided.length ? h("h3", {}, "Decided") : null,
        decided.map(proposalCard),
        doc.items.length ? null : h("p", { class: "muted" }, "No proposal yet."),
      );
    });
    await joining.run(async (body) => {
      const [view, govNodes] = await Promise.all([getJSON("/api/v1/membership"), getJSON("/api/v1/gov/nodes")]);
      replace(body, joiningList(view, govNodes.items));
    });
    await members.run(async (body) => {
      const doc = await getJSON("/api/v1/gov/members");
      replace(
        body,
        table(
          "Members",
          ["member", "roles", "status", "data", "key"],
          doc.items.map((m) =>
            h(
              "tr",
              { "data-member": m.name },
              h("th", { scope: "row" }, m.name),
              h("td", {}, m.roles.join(", ")),
              h("td", {}, chip(m.status, m.status === "active" ? "ok" : "muted")),
              h("td", { class: "small" }, Object.entries(m.data).map(([k, v]) => `${k}=${v}`).join(", ") || "—"),
              h("td", { class: "small" }, h("code", { title: m.public_key }, short(m.public_key, 12))),
            ),
          ),
          { class: "grid" },
        ),
      );
    });
    await rules.run(async (body) => {
      const c = await getJSON("/api/v1/gov/constitution");
      replace(
        body,
        h(
          "dl",
          { class: "rules" },
          h("dt", {}, "thresholds"),
          h("dd", {}, Object.entries(c.thresholds).map(([kind, t]) => h("div", {}, h("code", {}, kind), ": ", ruleText(t)))),
          h("dt", {}, "request window"),
          h("dd", {}, `${Math.round(c.request_window_ms / 1000)} s`),
          h("dt", {}, "token pools"),
          h("dd", {}, c.token_pools),
          h("dt", {}, "allowed code"),
          h("dd", {}, c.measurements.length ? c.measurements.map((m) => h("div", {}, h("code", { title: m }, short(m, 16)))) : "any"),
          h("dt", {}, "network"),
          h("dd", {}, h("code", {}, c.network_id || "—")),
        ),
      );
    });
    await nodes.run(async (body) => {
      const doc = await getJSON("/api/v1/gov/nodes");
      replace(
        body,
        h(
          "div",
          { class: "scroll" },
          table(
            "Nodes governance knows",
            ["node", "member", "status", "address", "API", "code measurement"],
            doc.items.map((n) =>
              h(
                "tr",
                { "data-node": n.name },
                h("th", { scope: "row" }, n.name),
                h("td", {}, n.member),
                h("td", {}, chip(n.status, n.status === "trusted" ? "ok" : n.status === "pending" ? "warn" : "muted")),
                h("td", { class: "small" }, n.host ? `${n.host}:${n.port}` : "—"),
                h("td", { class: "small" }, n.api_url || "—"),
                h("td", { class: "small" }, n.measurement ? h("code", { title: n.measurement }, short(n.measurement, 12)) : "—"),
              ),
            ),
            { class: "grid" },
          ),
        ),
      );
    });
  }

  return { id: "governance", title: "Governance", refreshMs: 3000, element, refresh };
}

function ruleText(t) {
  const base = t.rule === "count" ? `any ${t.count}` : t.rule === "all" ? "every member" : "majority";
  return t.veto ? `${base}, veto by role ${t.veto}` : base;
}

function proposalCard(p) {
  const t = p.tally;
  return h(
    "article",
    { class: "proposal", "data-proposal-id": p.id, "data-state": p.state },
    h(
      "h4",
      {},
      h("code", {}, p.id),
      " ",
      p.title || h("span", { class: "muted" }, "(untitled)"),
      " ",
      chip(p.state, `proposal-${p.state}`),
    ),
    h(
      "p",
      { class: "small" },
      `proposed by ${p.proposer}`,
      p.decided_tx ? ` · decided in ${p.decided_tx}` : "",
      p.reason ? h("span", { class: "bad-text" }, ` · ${p.reason}`) : null,
    ),
    h(
      "ul",
      { class: "actions" },
      p.actions.map((a) => h("li", {}, h("code", {}, a.kind), " ", h("span", { class: "small muted" }, actionArgs(a)))),
    ),
    voteBar(p),
    h(
      "p",
      { class: "small" },
      `${t.for} for · ${t.against} against · ${t.abstained} not voted, of ${t.voters} members; ` +
        `needs ${t.needed} (${t.rules.map((r) => `${r.kind}: ${ruleText(r)}`).join("; ")})`,
      Object.keys(p.ballots).length
        ? ` — ${Object.entries(p.ballots).map(([m, v]) => `${m} ${v}`).join(", ")}`
        : "",
      t.vetoes.length ? ` — veto holders: ${t.vetoes.map((v) => `${v.role}: ${v.holders.join(", ") || "none"}`).join("; ")}` : "",
    ),
  );
}

function actionArgs(action) {
  const args = Object.entries(action)
    .filter(([k]) => k !== "kind")
    .map(([k, v]) => `${k}=${typeof v === "string" ? short(v, 24) : short(JSON.stringify(v), 40)}`);
  return args.join(" ");
}

function voteBar(p) {
  const t = p.tally;
  const n = Math.max(1, t.voters);
  const cell = W / n;
  const H = 40;
  const parts = [s("rect", { class: "vote-track", x: 0, y: 6, width: W, height: 20, rx: 3 })];
  for (let i = 0; i < t.for; i++) {
    parts.push(s("rect", { class: "vote-for", x: i * cell + 1, y: 7, width: cell - 2, height: 18, rx: 2 }));
  }
  for (let i = 0; i < t.against; i++) {
    parts.push(s("rect", { class: "vote-against", x: W - (i + 1) * cell + 1, y: 7, width: cell - 2, height: 18, rx: 2 }));
  }
  const needX = Math.min(W - 1, t.needed * cell);
  parts.push(
    s("line", { class: "vote-need", x1: needX, y1: 1, x2: needX, y2: 31 }),
    s("text", { class: "axis", x: Math.min(W - 4, Math.max(4, needX)), y: H - 1, "text-anchor": needX > W - 60 ? "end" : "middle", text: `needs ${t.needed}` }),
  );
  const label = `${p.id}: ${t.for} for and ${t.against} against of ${t.voters} members; ${t.needed} needed; ${p.state}`;
  return h("div", { class: "votebar", "data-for": t.for, "data-against": t.against, "data-needed": t.needed }, svgCanvas(W, H, label, ...parts));
}

function joiningList(view, govNodes) {
  const rows = [];
  for (const g of govNodes) {
    if (g.status === "pending") {
      rows.push(
        h(
          "li",
          { "data-node": g.name },
          h("strong", {}, g.name),
          ` of ${g.member}: `,
          chip("pending", "warn"),
          " waits for a trust_node proposal to be accepted",
        ),
      );
    }
  }
  for (const n of view.nodes) {
    if (n.raft !== "learner" && !n.snapshot) continue;
    const target = view.commit_index || 0;
    let progress = "its progress is known to the leader only";
    let share = null;
    if (n.snapshot) {
      share = n.snapshot.size ? n.snapshot.acked / n.snapshot.size : 0;
      progress = `receiving a snapshot: ${n.snapshot.acked} of ${n.snapshot.size} bytes`;
    } else if (n.match !== null && target) {
      share = Math.min(1, n.match / target);
      progress = `caught up to entry ${n.match} of ${target}`;
    }
    rows.push(
      h(
        "li",
        { "data-node": n.name },
        h("strong", {}, n.name),
        ": ",
        chip(n.raft || "joining", "info"),
        ` ${progress}`,
        share !== null
          ? svgCanvas(
              W,
              14,
              `${n.name}: ${Math.round(share * 100)} % caught up`,
              s("rect", { class: "supply-track", x: 0, y: 2, width: W, height: 10, rx: 5 }),
              s("rect", { class: "supply-fill", x: 0, y: 2, width: Math.max(2, share * W), height: 10, rx: 5 }),
            )
          : null,
      ),
    );
  }
  const voters = view.voters.length;
  const learners = view.learners.length;
  const steps = Object.entries(view.steps || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  return h(
    "div",
    {},
    rows.length ? h("ul", { class: "joining" }, rows) : h("p", { class: "muted" }, "No node is joining."),
    h(
      "p",
      { class: "small muted" },
      `Raft configuration seen by ${view.name}: ${voters} voters, ${learners} learners` + (steps ? `; changes made: ${steps}` : "."),
    ),
  );
}
