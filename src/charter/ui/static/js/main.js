// The explorer page: a header naming the node, one tab per view, and a scheduler that
// refreshes only the view in sight (and nothing while the page is hidden).

import { getJSON } from "./api.js";
import { h, replace } from "./dom.js";
import { EventStream } from "./events.js";
import { governanceView } from "./views/governance.js";
import { ledgerView } from "./views/ledger.js";
import { messagesView } from "./views/messages.js";
import { networkView } from "./views/network.js";
import { tokensView } from "./views/tokens.js";

const stream = new EventStream();
const views = [networkView(), ledgerView(), messagesView(stream), tokensView(), governanceView()];
const byId = new Map(views.map((v) => [v.id, v]));
let current = null;
let timer = null;
let generation = 0;

function buildTabs() {
  const list = document.getElementById("tabs");
  const panels = document.getElementById("views");
  for (const view of views) {
    const tab = h(
      "button",
      {
        type: "button",
        role: "tab",
        id: `tab-${view.id}`,
        "aria-controls": `view-${view.id}`,
        "aria-selected": "false",
        tabindex: "-1",
        "data-view": view.id,
      },
      view.title,
    );
    tab.addEventListener("click", () => show(view.id, true));
    tab.addEventListener("keydown", (event) => {
      const i = views.indexOf(view);
      let next = null;
      if (event.key === "ArrowRight") next = views[(i + 1) % views.length];
      if (event.key === "ArrowLeft") next = views[(i - 1 + views.length) % views.length];
      if (event.key === "Home") next = views[0];
      if (event.key === "End") next = views[views.length - 1];
      if (next) {
        event.preventDefault();
        show(next.id, true);
        document.getElementById(`tab-${next.id}`).focus();
      }
    });
    list.append(tab);
    panels.append(
      h(
        "div",
        { role: "tabpanel", id: `view-${view.id}`, "aria-labelledby": `tab-${view.id}`, hidden: true, tabindex: "0" },
        view.element,
      ),
    );
  }
}

function show(id, pushHash) {
  const view = byId.get(id) || views[0];
  current = view;
  for (const v of views) {
    const selected = v === view;
    const tab = document.getElementById(`tab-${v.id}`);
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    document.getElementById(`view-${v.id}`).hidden = !selected;
  }
  if (pushHash && location.hash !== `#${view.id}`) history.replaceState(null, "", `#${view.id}`);
  schedule(0);
}

function schedule(delay) {
  if (timer) clearTimeout(timer);
  const mine = ++generation;
  timer = setTimeout(() => tick(mine), delay);
}

async function tick(mine) {
  if (document.hidden || !current) return;
  const view = current;
  try {
    await Promise.all([view.refresh(), refreshHeader()]);
  } catch (err) {
    console.warn("refresh failed", err);
  }
  if (mine === generation && view === current) schedule(view.refreshMs);
}

async function refreshHeader() {
  const slot = document.getElementById("node");
  try {
    const st = await getJSON("/api/v1/status");
    document.title = `${st.name} — Charter explorer`;
    replace(
      slot,
      h("strong", {}, st.name),
      ` of ${st.member} · `,
      h("span", { class: `chip chip-role-${st.role}` }, st.role),
      ` · term ${st.term} · commit ${st.commit_index} · seqno ${st.last_seqno}`,
      st.halted ? h("span", { class: "chip chip-bad" }, "halted: divergence alarm") : null,
    );
    slot.classList.remove("bad-text");
  } catch (err) {
    replace(slot, `node status unavailable: ${err.message}`);
    slot.classList.add("bad-text");
  }
}

window.addEventListener("hashchange", () => show(location.hash.slice(1), false));
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) schedule(0);
});
window.addEventListener("pagehide", () => stream.stop());
window.addEventListener("pageshow", (event) => {
  if (event.persisted) stream.resume();
});
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  console.warn("unhandled", event.reason);
});

buildTabs();
stream.start();
show(location.hash.slice(1), false);
