// Tokens: each pool with its supply, every account's balance as a bar, and the newest
// mints, burns and transfers. Reads GET /api/v1/tokens/pools, /api/v1/tokens/balances
// and /api/v1/explorer/token-transfers.

import { getJSON } from "../api.js";
import { chip, h, replace, s, svgCanvas, table } from "../dom.js";
import { amount, ratio } from "../format.js";
import { Panel } from "../panel.js";

const TOP = 24;
const W = 720;
const ROW = 26;
const LABEL_W = 170;
const VALUE_W = 150;

export function tokensView() {
  const pools = new Panel("Pools and balances", "Bars are each account's balance, to the scale of the largest in its pool.");
  const history = new Panel("Recent transfers", "Mints, burns and transfers, newest first.");
  const element = h("div", { class: "view-grid" }, pools.element, history.element);
  let decimals = new Map();

  async function refresh() {
    await pools.run(async (body) => {
      const [poolList, balances] = await Promise.all([
        getJSON("/api/v1/tokens/pools", { limit: 1000 }),
        getJSON("/api/v1/tokens/balances", { limit: 10000 }),
      ]);
      decimals = new Map(poolList.map((p) => [p.name, p.decimals]));
      if (!poolList.length) {
        replace(body, h("p", { class: "muted" }, "No token pool yet."));
        return;
      }
      const byPool = new Map(poolList.map((p) => [p.name, []]));
      for (const b of balances) if (byPool.has(b.pool)) byPool.get(b.pool).push(b);
      replace(body, h("div", { class: "pools" }, poolList.map((p) => poolCard(p, byPool.get(p.name)))));
    });
    await history.run(async (body) => {
      const rows = await getJSON("/api/v1/explorer/token-transfers", { limit: 40 });
      replace(
        body,
        rows.length
          ? h(
              "div",
              { class: "scroll" },
              table(
                "Newest token operations first",
                ["seqno", "tx id", "type", "pool", "from", "to", "amount", "by member"],
                rows.map((t) => transferRow(t, decimals.get(t.pool) || 0)),
                { class: "grid", id: "transfer-table" },
              ),
            )
          : h("p", { class: "muted" }, "No token operation yet."),
      );
    });
  }

  return { id: "tokens", title: "Tokens", refreshMs: 2500, element, refresh };
}

function poolCard(pool, balances) {
  const facts = [
    pool.type,
    pool.type === "fungible" ? `${pool.decimals} decimals` : null,
    `mint: ${pool.mint_policy}`,
    `created by ${pool.creator}`,
  ].filter(Boolean);
  return h(
    "article",
    { class: "pool", "data-pool": pool.name },
    h("h3", {}, pool.name, " ", h("span", { class: "small muted" }, facts.join(" · "))),
    supplyBar(pool),
    balances.length ? balanceChart(pool, balances) : h("p", { class: "muted" }, "No account holds any."),
  );
}

function supplyBar(pool) {
  const total = pool.supply;
  const text = `supply ${amount(total, pool.decimals)}` + (pool.max_supply ? ` of at most ${amount(pool.max_supply, pool.decimals)}` : "");
  if (!pool.max_supply) return h("p", { class: "small" }, text);
  const share = ratio(total, pool.max_supply);
  return h(
    "div",
    { class: "supply" },
    svgCanvas(
      W,
      16,
      `${pool.name}: ${text}`,
      s("rect", { class: "supply-track", x: 0, y: 3, width: W, height: 10, rx: 5 }),
      s("rect", { class: "supply-fill", x: 0, y: 3, width: Math.max(2, share * W), height: 10, rx: 5 }),
    ),
    h("p", { class: "small" }, text),
  );
}

function balanceChart(pool, balances) {
  const sorted = balances.slice().sort((a, b) => {
    const [x, y] = [BigInt(a.balance), BigInt(b.balance)];
    return x === y ? a.account.localeCompare(b.account) : x > y ? -1 : 1;
  });
  const shown = sorted.slice(0, TOP);
  const max = shown[0].balance;
  const barW = W - LABEL_W - VALUE_W;
  const rows = shown.map((b, i) => {
    const y = i * ROW;
    const w = Math.max(2, ratio(b.balance, max) * barW);
    const text = amount(b.balance, pool.decimals);
    return s(
      "g",
      { class: "balance", "data-pool": pool.name, "data-account": b.account, "data-balance": b.balance },
      s("title", { text: `${b.account}: ${text} ${pool.name}` }),
      s("text", { class: "bar-account", x: LABEL_W - 8, y: y + 17, "text-anchor": "end", text: b.account }),
      s("rect", { class: "balance-bar", x: LABEL_W, y: y + 4, width: w, height: ROW - 8, rx: 3 }),
      s("text", { class: "bar-value", x: LABEL_W + w + 6, y: y + 17, text }),
    );
  });
  const more = sorted.length - shown.length;
  return h(
    "div",
    {},
    svgCanvas(W, shown.length * ROW + 4, `Balances in ${pool.name}, largest first`, ...rows),
    more > 0 ? h("p", { class: "small muted" }, `and ${more} more accounts`) : null,
  );
}

function transferRow(t, decimals) {
  const kind = { mint: "ok", burn: "bad", transfer: "info" }[t.type] || "muted";
  return h(
    "tr",
    { "data-tx-id": t.tx_id, "data-type": t.type },
    h("td", { class: "num" }, String(t.seqno)),
    h("td", {}, h("code", {}, t.tx_id)),
    h("td", {}, chip(t.type, kind)),
    h("td", {}, t.pool),
    h("td", {}, t.from || "—"),
    h("td", {}, t.to || "—"),
    h("td", { class: "num" }, t.token_id ? `#${t.token_id}` : amount(t.amount, decimals)),
    h("td", {}, t.member, t.operator ? h("div", { class: "small muted" }, `operator ${t.operator}`) : null),
  );
}
