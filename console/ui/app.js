// countd's web console. Everything it shows comes from this node's /v1 API;
// user data (names, tags, documents) only ever reaches the page as text
// (textContent, never innerHTML), and the page runs under a CSP without
// inline script. Reads are stale-local (this node's view); writes ask this
// node to forward them to the leader, since a browser cannot follow a
// redirect to another origin.
"use strict";

const POLL_MS = 1000; // nothing polls faster than once a second

// ---- DOM helpers: every string becomes a text node ----

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

function table(headers, rows) {
  return el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows)));
}

function message() {
  const m = el("p", { class: "msg", role: "status", "aria-live": "polite" });
  m.show = (text, kind) => { m.textContent = text || ""; m.className = "msg " + (kind || ""); };
  return m;
}

// ---- the API ----

const tokenStore = {
  get: () => sessionStorage.getItem("countd-token") || "",
  set: (v) => sessionStorage.setItem("countd-token", v),
  clear: () => sessionStorage.removeItem("countd-token"),
};

class APIError extends Error {
  constructor(status, body) {
    const text = body && body.error ? body.error : (typeof body === "string" && body ? body : "HTTP " + status);
    super(status === 401 ? "Unauthorized: " + text : status === 403 ? "Forbidden: " + text : text);
    this.status = status;
    this.code = body && body.code;
    this.body = body;
  }
}

function headers(extra) {
  const h = { "X-Countd-Forward": "1", ...extra };
  const t = tokenStore.get();
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

async function api(method, path, opts = {}) {
  const init = { method, headers: headers(opts.headers), cache: "no-store", signal: opts.signal };
  if (opts.body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    banner("This node is not answering (" + e.message + "). It may have stopped; open the console on another node.");
    throw e;
  }
  banner("");
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (r.status === 401) askToken(body && body.error);
  if (!r.ok) throw new APIError(r.status, body);
  return { body, headers: r.headers };
}

function enc(name) { return encodeURIComponent(name); }

// ---- chrome: banner, token form, where am I ----

function banner(text) {
  const b = document.getElementById("banner");
  b.textContent = text;
  b.hidden = !text;
}

function askToken(why) {
  const f = document.getElementById("token-form");
  document.getElementById("token-why").textContent = why ?
    why + " — the secret is kept in this browser tab only (session storage)." :
    "This cluster checks ACL tokens. The secret is kept in this browser tab only (session storage).";
  f.hidden = false;
  document.getElementById("token-input").focus();
}

function setupToken() {
  const f = document.getElementById("token-form");
  f.addEventListener("submit", (e) => {
    e.preventDefault();
    tokenStore.set(document.getElementById("token-input").value.trim());
    document.getElementById("token-input").value = "";
    f.hidden = true;
    route();
  });
  document.getElementById("token-forget").addEventListener("click", () => { tokenStore.clear(); f.hidden = true; route(); });
  document.getElementById("token-button").addEventListener("click", () => { f.hidden = !f.hidden; if (!f.hidden) askToken(); });
}

let self = { id: "", state: "" };

function whereami(c) {
  self = { id: c.node_id, state: c.state };
  document.getElementById("whereami").textContent =
    "node " + c.node_id + " (" + c.state.toLowerCase() + ")" + (c.leader ? " · leader " + c.leader : " · no leader");
}

// ---- loops that stop when the view changes ----

function every(signal, ms, fn) {
  (async () => {
    while (!signal.aborted) {
      try { await fn(); } catch (e) { if (e.name === "AbortError") return; }
      await sleep(ms, signal);
    }
  })();
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

// ---- views ----

function viewCluster(root, signal) {
  const msg = message();
  const stats = el("div", { class: "stats" });
  const members = el("div");
  const rateText = el("p", { class: "muted" }, "mint rate: measuring…");
  const chart = svgEl("svg", { class: "chart", viewBox: "0 0 240 80", preserveAspectRatio: "none", role: "img", "aria-label": "IDs minted per second, last minute" });
  const line = svgEl("polyline", { points: "" });
  chart.append(line);
  const transfer = el("button", { type: "button", onclick: async () => {
    msg.show("transferring leadership…");
    try {
      const r = await api("POST", "/v1/cluster/transfer-leader", { body: {} });
      msg.show("leader is now " + r.body.leader, "ok");
    } catch (e) { msg.show(e.message, "error"); }
  } }, "Transfer leadership");
  root.append(el("h1", {}, "Cluster"), stats, members, el("p", {}, transfer), msg,
    el("h2", {}, "IDs minted per second"), chart, rateText);

  every(signal, POLL_MS, async () => {
    try {
      const { body: c } = await api("GET", "/v1/cluster", { signal });
      whereami(c);
      stats.replaceChildren(...[["cluster", c.name], ["this node", c.node_id + " (" + c.state + ")"], ["leader", c.leader || "none known"],
        ["term", c.term], ["commit index", c.commit_index], ["applied index", c.applied_index]]
        .map(([k, v]) => el("div", {}, el("span", {}, k), String(v))));
      members.replaceChildren(table(["member", "role", "suffrage", "gossip", "health", "last contact", "HTTP", "Raft"],
        c.members.map((m) => el("tr", { class: m.status === "alive" ? "" : "down", "data-member": m.id },
          el("td", {}, m.id), el("td", {}, m.leader ? el("span", { class: "badge leader" }, "leader") : "follower"),
          el("td", {}, m.suffrage), el("td", {}, m.status), el("td", {}, m.health || "—"),
          el("td", { class: "num" }, m.last_contact_ms < 0 ? "unknown" : m.last_contact_ms + " ms"),
          el("td", {}, m.http_addr), el("td", {}, m.raft_addr)))));
      if (msg.className.includes("error") && msg.textContent.startsWith("cluster:")) msg.show("");
    } catch (e) { if (e.name !== "AbortError") msg.show("cluster: " + e.message, "error"); throw e; }
  });

  const points = [];
  let last = null;
  every(signal, POLL_MS, async () => {
    const r = await fetch("/metrics", { headers: headers(), cache: "no-store", signal });
    if (!r.ok) { rateText.textContent = "mint rate: /metrics answered " + r.status + " (it needs cluster:read)"; return; }
    const m = /^countd_applied_minted_ids_total ([0-9.e+]+)$/m.exec(await r.text());
    if (!m) return;
    const now = { t: performance.now(), v: Number(m[1]) };
    if (last) {
      const rate = Math.max(0, (now.v - last.v) / ((now.t - last.t) / 1000));
      points.push(rate);
      if (points.length > 60) points.shift();
      const max = Math.max(1, ...points);
      line.setAttribute("points", points.map((p, i) => (i * 4) + "," + (78 - (p / max) * 74).toFixed(1)).join(" "));
      rateText.textContent = "mint rate: " + Math.round(rate) + " IDs/s now, peak " + Math.round(max) + " in the last minute";
    }
    last = now;
  });
}

function viewCounters(root, signal) {
  const msg = message();
  const list = el("div");
  const name = el("input", { id: "mint-name", required: true, pattern: "[A-Za-z0-9._:@-]+", placeholder: "orders" });
  const mint = async (id) => {
    try {
      const r = await api("POST", "/v1/counters/" + enc(id) + "/next");
      msg.show("minted " + r.body.value + " from " + id, "ok");
    } catch (e) { msg.show(e.message, "error"); }
  };
  root.append(el("h1", {}, "Counters"),
    el("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); mint(name.value); } },
      el("div", {}, el("label", { for: "mint-name" }, "Counter"), name), el("button", { type: "submit" }, "Mint")),
    msg, list);
  every(signal, POLL_MS, async () => {
    try {
      const { body } = await api("GET", "/v1/counters?consistency=stale&limit=200", { signal });
      list.replaceChildren(body.counters.length === 0 ? el("p", { class: "muted" }, "No counters yet.") :
        table(["counter", "value", "increment", "offset", "mode", ""], body.counters.map((c) =>
          el("tr", { "data-counter": c.id }, el("td", {}, c.id), el("td", { class: "num value" }, c.value),
            el("td", { class: "num" }, c.increment), el("td", { class: "num" }, c.offset),
            el("td", {}, c.cache ? el("span", { class: "badge cached" }, "cached " + c.cache) : "dense", c.monotonic ? " · monotonic" : ""),
            el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => mint(c.id), "aria-label": "Mint from " + c.id }, "Mint"))))),
        body.next ? el("p", { class: "muted" }, "Showing the first 200.") : null);
    } catch (e) { if (e.name !== "AbortError") msg.show(e.message, "error"); throw e; }
  });
}

// pickName is the page of a kind of object that has no list: a name to open.
function pickName(root, title, what, base) {
  const input = el("input", { id: "pick-name", required: true, placeholder: what });
  root.append(el("h1", {}, title), el("form", { class: "inline", onsubmit: (e) => {
    e.preventDefault();
    location.hash = base + enc(input.value.trim());
  } }, el("div", {}, el("label", { for: "pick-name" }, "Name"), input), el("button", { type: "submit" }, "Open")));
  input.focus();
}

function viewQueue(root, signal, name) {
  const msg = message();
  const head = el("div", { class: "stats" });
  const list = el("div");
  const pid = el("input", { id: "join-pid", required: true, placeholder: "host-a" });
  const tags = el("input", { id: "join-tags", placeholder: "dc=west,role=db" });
  root.append(el("h1", {}, "Queue ", el("code", {}, name)), head,
    el("form", { class: "inline", onsubmit: async (e) => {
      e.preventDefault();
      const t = {};
      for (const kv of tags.value.split(",").map((s) => s.trim()).filter(Boolean)) {
        const i = kv.indexOf("=");
        if (i < 1) { msg.show("tags are key=value pairs separated by commas", "error"); return; }
        t[kv.slice(0, i)] = kv.slice(i + 1);
      }
      try {
        const r = await api("POST", "/v1/queues/" + enc(name) + "/join", { body: { process_id: pid.value, tags: t } });
        msg.show(r.body.process_id + " joined: counter " + r.body.counter + ", position " + r.body.position, "ok");
      } catch (err) { msg.show(err.message, "error"); }
    } }, el("div", {}, el("label", { for: "join-pid" }, "Process ID"), pid),
    el("div", {}, el("label", { for: "join-tags" }, "Tags"), tags), el("button", { type: "submit" }, "Join")),
    msg, list);
  const leave = async (p) => {
    try {
      await api("POST", "/v1/queues/" + enc(name) + "/leave", { body: { process_id: p } });
      msg.show(p + " left", "ok");
    } catch (e) { msg.show(e.message, "error"); }
  };
  let index = 0;
  // A blocking query answers as soon as the queue changes; a missing queue
  // is looked for again once a second.
  every(signal, 0, async () => {
    try {
      const q = index ? "&index=" + index + "&wait=30s" : "";
      const { body, headers: h } = await api("GET", "/v1/queues/" + enc(name) + "?consistency=stale" + q, { signal });
      index = Number(h.get("X-Countd-Index")) || body.index;
      head.replaceChildren(el("div", {}, el("span", {}, "fencing token"), String(body.fencing_token)),
        el("div", {}, el("span", {}, "members"), String(body.members.length)),
        el("div", {}, el("span", {}, "holder (position 0)"), body.members.length ? body.members[0].process_id : "none"));
      list.replaceChildren(body.members.length === 0 ? el("p", { class: "muted" }, "No members.") :
        table(["position", "counter", "process", "tags", "session", ""], body.members.map((m) =>
          el("tr", { "data-process": m.process_id }, el("td", { class: "num" }, m.position), el("td", { class: "num" }, m.counter),
            el("td", {}, m.process_id), el("td", {}, Object.entries(m.tags || {}).map(([k, v]) => k + "=" + v).join(", ")),
            el("td", {}, m.session || "—"),
            el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => leave(m.process_id), "aria-label": "Leave " + m.process_id }, "Leave"))))));
    } catch (e) {
      if (e.name === "AbortError") throw e;
      index = 0;
      if (e.status === 404) { head.replaceChildren(); list.replaceChildren(el("p", { class: "muted" }, "No queue " + name + " yet: join to make it.")); }
      else msg.show(e.message, "error");
      await sleep(POLL_MS, signal);
    }
  });
}

function viewDoc(root, signal, name) {
  const msg = message();
  const meta = el("p", { class: "muted" });
  const current = el("pre", { id: "doc-value", tabindex: "0" });
  const changes = el("ol", { class: "changes", id: "doc-changes", "aria-live": "polite" });
  const editor = el("textarea", { id: "doc-editor", spellcheck: "false" });
  let doc = { version: 0, value: null };
  let editBase = null; // the version the edit started from, for If-Match
  const show = () => {
    meta.textContent = doc.value === null ? "No document " + name + " yet (version " + doc.version + ")." : "version " + doc.version;
    current.textContent = doc.value === null ? "" : JSON.stringify(doc.value, null, 2);
  };
  root.append(el("h1", {}, "Document ", el("code", {}, name)), meta, current,
    el("h2", {}, "Edit"),
    el("p", { class: "muted" }, "Saving sends If-Match with the version the edit started from: if the document changed meanwhile, the save is refused and your text is kept."),
    el("label", { for: "doc-editor" }, "JSON object"), editor,
    el("p", {}, el("button", { type: "button", onclick: () => { editor.value = current.textContent || "{}"; editBase = doc.version; msg.show("editing version " + doc.version); } }, "Edit current"), " ",
      el("button", { type: "button", id: "doc-save", onclick: async () => {
        let value;
        try { value = JSON.parse(editor.value); } catch (e) { msg.show("not JSON: " + e.message, "error"); return; }
        const base = editBase === null ? doc.version : editBase;
        try {
          const r = await api("PUT", "/v1/docs/" + enc(name), { body: value, headers: base ? { "If-Match": '"' + base + '"' } : { "If-None-Match": "*" } });
          editBase = null;
          msg.show("saved as version " + r.body.version, "ok");
        } catch (e) {
          msg.show(e.status === 412 ? "Conflict: the document changed since version " + base + " (it is at version " + doc.version + " now). Your text is kept; edit again from the current version to merge." : e.message, "error");
        }
      } }, "Save")),
    msg, el("h2", {}, "Changes, newest first"), changes);

  const addChange = (ev) => {
    const li = el("li", {}, el("span", { class: "kind" }, "version " + ev.version), " ",
      el("ul", {}, ev.changes.map((k) => el("li", { class: k.type, "data-type": k.type },
        el("span", { class: "kind" }, k.type), " ", el("code", {}, k.key),
        k.type !== "added" ? [" was ", el("code", {}, JSON.stringify(k.old))] : null,
        k.type !== "removed" ? [" now ", el("code", {}, JSON.stringify(k.new))] : null))));
    changes.prepend(li);
    while (changes.children.length > 100) changes.lastChild.remove();
  };
  const apply = (event, data) => {
    if (event === "reset") {
      doc = { version: data.version, value: data.value };
      changes.prepend(el("li", {}, el("span", { class: "kind" }, "version " + data.version), " (the whole document)"));
    } else if (event === "change") {
      const v = Object.assign({}, doc.value || {});
      for (const k of data.changes) {
        if (k.type === "removed") delete v[k.key]; else v[k.key] = k.new;
      }
      doc = { version: data.version, value: v };
      addChange(data);
    }
    show();
  };
  // The watch is an SSE stream read with fetch, which can send the token
  // (EventSource cannot); it resumes from the last version after a break.
  every(signal, POLL_MS, async () => {
    const q = doc.version ? "?since=" + doc.version : "";
    const r = await fetch("/v1/docs/" + enc(name) + "/watch" + q, { headers: headers(), cache: "no-store", signal });
    if (!r.ok) {
      let body = null;
      try { body = await r.json(); } catch { /* not JSON */ }
      if (r.status === 401) askToken(body && body.error);
      msg.show(new APIError(r.status, body).message, "error");
      return;
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message", data = "";
        for (const l of frame.split("\n")) {
          if (l.startsWith("event: ")) event = l.slice(7);
          else if (l.startsWith("data: ")) data += l.slice(6);
        }
        if (data) apply(event, JSON.parse(data));
      }
    }
  });
}

function viewSessions(root, signal) {
  const msg = message();
  const list = el("div");
  root.append(el("h1", {}, "Sessions"), msg, list);
  every(signal, POLL_MS, async () => {
    try {
      const { body } = await api("GET", "/v1/sessions?consistency=stale&limit=200", { signal });
      list.replaceChildren(body.sessions.length === 0 ? el("p", { class: "muted" }, "No live sessions.") :
        table(["session", "name", "TTL", "expires in"], body.sessions.map((s) =>
          el("tr", { "data-session": s.id }, el("td", {}, el("code", {}, s.id)), el("td", {}, s.name), el("td", {}, s.ttl),
            el("td", { class: "num" }, (s.expires_in_ms / 1000).toFixed(1) + " s")))));
    } catch (e) { if (e.name !== "AbortError") msg.show(e.message, "error"); throw e; }
  });
}

// ---- the router: #/view[/name] ----

let current = null;

function route() {
  if (current) current.abort();
  current = new AbortController();
  const [, view = "cluster", ...rest] = (location.hash || "#/cluster").split("/");
  const name = decodeURIComponent(rest.join("/"));
  const root = document.getElementById("view");
  root.replaceChildren();
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  const signal = current.signal;
  switch (view) {
    case "counters": viewCounters(root, signal); break;
    case "queues": if (name) viewQueue(root, signal, name); else pickName(root, "Queues & locks", "a queue or lock name", "#/queues/"); break;
    case "docs": if (name) viewDoc(root, signal, name); else pickName(root, "Documents", "a document name", "#/docs/"); break;
    case "sessions": viewSessions(root, signal); break;
    default: viewCluster(root, signal);
  }
  document.title = "countd · " + view + (name ? " " + name : "");
  if (view !== "cluster") { // keep "where am I" current on every view
    api("GET", "/v1/cluster", { signal }).then((r) => whereami(r.body), () => {});
  }
}

setupToken();
window.addEventListener("hashchange", route);
route();
