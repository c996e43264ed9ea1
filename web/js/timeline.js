// Timelines: rendering statuses, paging by Link rel=next, since_id polling, delivery-state polling.
import { api, signedIn } from "./api.js";
import { session } from "./session.js";

const LABELS = {
  queued: "Queued in this browser",
  waiting: "Safe in Lifeboat, waiting for the main service",
  delivered: "Delivered",
  failed: "Failed",
};

const feed = () => document.getElementById("timeline");
let current = null;      // {path, params, fallbackUrl, next, gen}
let pollTimer = null;
let generation = 0;
let observer = null;
// Posts deleted from this page: a poll or page that was already on its way
// when the delete went through must not put them back.
const deletedIds = new Set();

const pollMs = () => Number(localStorage.getItem("lifeboat.pollMs")) || 10000;

// Build a DOM fragment from server HTML keeping only text, line breaks and http(s) links.
export function contentFragment(html) {
  const out = document.createDocumentFragment();
  const doc = new DOMParser().parseFromString(String(html || ""), "text/html");
  let firstBlock = true;
  const walk = (node, target) => {
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) {
        target.appendChild(document.createTextNode(child.nodeValue));
      } else if (child.nodeType === Node.ELEMENT_NODE) {
        const tag = child.tagName.toLowerCase();
        if (tag === "br") { target.appendChild(document.createTextNode("\n")); continue; }
        if (tag === "script" || tag === "style") continue;
        if (tag === "p") {
          if (!firstBlock) target.appendChild(document.createTextNode("\n\n"));
          firstBlock = false;
          walk(child, target);
          continue;
        }
        if (tag === "a") {
          const href = child.getAttribute("href") || "";
          if (/^https?:\/\//i.test(href)) {
            const a = document.createElement("a");
            a.href = href; a.rel = "nofollow noopener noreferrer"; a.target = "_blank";
            walk(child, a);
            target.appendChild(a);
            continue;
          }
        }
        walk(child, target);
      }
    }
  };
  walk(doc.body, out);
  return out;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}

export function isOwn(status) {
  const me = session.me;
  if (!me || !status.account) return false;
  return status.account.id === me.id || status.account.username === me.username;
}

export function setState(article, state, reason) {
  if (!state) { article.removeAttribute("data-state"); return; }
  article.dataset.state = state;
  let label = article.querySelector(".state");
  if (!label) {
    label = el("p", { class: "state" });
    const actions = article.querySelector(".actions");
    article.insertBefore(label, actions);
  }
  label.textContent = state === "failed" ? `${LABELS.failed}: ${reason || "unknown error"}` : LABELS[state] || state;
}

function timeEl(iso) {
  const d = new Date(iso || Date.now());
  const t = el("time", { datetime: isNaN(d) ? "" : d.toISOString() });
  t.textContent = isNaN(d) ? String(iso || "") : d.toLocaleString();
  return t;
}

// Renders one Mastodon status (or a pseudo-status from the outbox / a feed entry) as an <article>.
export function renderStatus(status, { state, reason, readOnly = false } = {}) {
  const acct = status.account || {};
  const username = acct.acct || acct.username || "unknown";
  const art = el("article", { "data-id": status.id, tabindex: "0", "aria-label": `Post by @${username}` });
  const head = el("header", { class: "meta" },
    el("span", { class: "name", text: acct.display_name || acct.username || username }), " ",
    el("a", { href: `#/@${username}`, class: "acct", text: `@${username}` }), " ",
    timeEl(status.created_at));
  art.append(head);
  if (status.in_reply_to_account_acct) art.append(el("p", { class: "reply-to", text: `Replying to @${status.in_reply_to_account_acct}` }));
  const body = el("div", { class: "content" });
  if (typeof status._plain === "string") body.textContent = status._plain; else body.append(contentFragment(status.content));
  art.append(body);
  const actions = el("div", { class: "actions" });
  art.append(actions);
  const own = !readOnly && isOwn(status);
  if (!readOnly && signedIn() && !String(status.id).startsWith("queued-")) {
    const reply = el("button", { type: "button", class: "reply", text: "Reply" });
    reply.addEventListener("click", () => document.dispatchEvent(new CustomEvent("lifeboat:reply", { detail: status })));
    actions.append(reply);
  }
  if (own && !String(status.id).startsWith("queued-")) {
    const del = el("button", { type: "button", class: "delete", text: "Delete" });
    del.addEventListener("click", async () => {
      if (!confirm("Delete this post?")) return;
      del.disabled = true;
      try {
        await api(`/api/v1/statuses/${encodeURIComponent(status.id)}`, { method: "DELETE" });
        deletedIds.add(String(status.id));
        art.remove();
      } catch (e) { del.disabled = false; alert("Could not delete: " + e.message); }
    });
    actions.append(del);
  }
  const lb = status.lifeboat;
  if (state) setState(art, state, reason);
  else if (own && lb && lb.delivery) setState(art, lb.delivery, lb.failure_reason);
  return art;
}

function markReady() {
  if (document.documentElement.dataset.ready !== "true") {
    window.lifeboatFirstRenderMs = performance.now();
    document.documentElement.dataset.ready = "true";
  }
}

function appendStatuses(list) {
  const f = feed();
  for (const s of list) {
    if (deletedIds.has(String(s.id)) || f.querySelector(`article[data-id="${CSS.escape(String(s.id))}"]`)) continue;
    f.append(renderStatus(s));
  }
}

function setOlder(next) {
  current.next = next;
  document.getElementById("load-older").hidden = !next;
}

// Atom feed fallback (read-only): parse entries with DOMParser, text only.
export async function loadAtom(url) {
  const res = await fetch(url, { headers: { Accept: "application/atom+xml" } });
  if (!res.ok) throw new Error("Feed HTTP " + res.status);
  const xml = new DOMParser().parseFromString(await res.text(), "application/xml");
  if (xml.querySelector("parsererror")) throw new Error("Feed unreadable");
  const out = [];
  for (const entry of xml.getElementsByTagName("entry")) {
    const get = (n) => { const x = entry.getElementsByTagName(n)[0]; return x ? x.textContent : ""; };
    const authorEl = entry.getElementsByTagName("author")[0];
    const name = authorEl ? (authorEl.getElementsByTagName("name")[0] || {}).textContent || "" : "";
    const link = entry.getElementsByTagName("link")[0];
    const href = link ? link.getAttribute("href") || "" : "";
    const m = href.match(/\/users\/([^/]+)/) || href.match(/@([^/]+)/);
    const username = (m && m[1]) || (name || "unknown").replace(/^@/, "");
    const contentEl = entry.getElementsByTagName("content")[0] || entry.getElementsByTagName("summary")[0];
    const type = contentEl ? contentEl.getAttribute("type") || "text" : "text";
    const raw = contentEl ? contentEl.textContent : get("title");
    const status = {
      id: "feed-" + (get("id") || out.length),
      created_at: get("published") || get("updated"),
      account: { username, acct: username, display_name: name || username },
    };
    if (type === "html" || type === "xhtml") status.content = raw; else status._plain = raw;
    out.push(status);
  }
  return out;
}

async function fallback(gen, url) {
  if (!url) throw new Error("no fallback");
  const list = await loadAtom(url);
  if (gen !== generation) return;
  const f = feed();
  f.replaceChildren();
  for (const s of list) f.append(renderStatus(s, { readOnly: true }));
  current.readOnly = true;
  setOlder(null);
  document.dispatchEvent(new CustomEvent("lifeboat:readonly", { detail: true }));
}

// Show a timeline. path: API path, e.g. /api/v1/timelines/public. fallbackUrl: Atom feed for read-only.
export async function showTimeline({ path, params = {}, fallbackUrl = null, title, forceFallback = false }) {
  const gen = ++generation;
  current = { path, params, fallbackUrl, next: null, gen, readOnly: false };
  const f = feed();
  document.getElementById("timeline-title").textContent = title || "";
  f.replaceChildren();
  f.setAttribute("aria-busy", "true");
  setOlder(null);
  try {
    if (forceFallback) throw Object.assign(new Error("API unavailable"), { status: 0 });
    const q = new URLSearchParams({ limit: "20", ...params });
    const { data, next } = await api(`${path}?${q}`);
    if (gen !== generation) return;
    appendStatuses(Array.isArray(data) ? data : []);
    setOlder(next);
  } catch (e) {
    if (gen !== generation) return;
    if ((e.status === 0 || e.status >= 500) && fallbackUrl) {
      try { await fallback(gen, fallbackUrl); } catch (e2) { showError(`Could not load posts: ${e.message}`); }
    } else {
      showError(`Could not load posts: ${e.message}`);
    }
  } finally {
    if (gen === generation) {
      f.setAttribute("aria-busy", "false");
      document.dispatchEvent(new CustomEvent("lifeboat:rendered"));
      markReady();
      rearmSentinel();
    }
  }
  startPolling();
}

function showError(msg) {
  feed().append(el("p", { class: "error", role: "alert", text: msg }));
}

export async function loadOlder() {
  if (!current || !current.next || current.loading) return;
  const gen = generation;
  current.loading = true;
  const f = feed();
  f.setAttribute("aria-busy", "true");
  let loaded = false;
  try {
    const { data, next } = await api(current.next);
    if (gen !== generation) return;
    appendStatuses(Array.isArray(data) ? data : []);
    setOlder(next);
    loaded = true;
  } catch (e) {
    if (gen === generation) showError(`Could not load older posts: ${e.message}`);
  } finally {
    if (gen === generation) {
      current.loading = false;
      f.setAttribute("aria-busy", "false");
      // Only after a page that loaded: after an error, another load at once
      // would hammer an API that is failing (the button stays).
      if (loaded) rearmSentinel();
    }
  }
}

// An observer reports changes only: if the page grew and was scrolled to its
// end again within one frame, it never saw the sentinel leave, and would not
// load the next page. Observing afresh reports where the sentinel is now.
function rearmSentinel() {
  if (!observer) return;
  const sentinel = document.getElementById("sentinel");
  observer.unobserve(sentinel);
  observer.observe(sentinel);
}

// Newest server id shown (ids compare as strings of equal-length ULIDs or as numbers).
function newestId() {
  for (const a of feed().querySelectorAll("article[data-id]")) {
    const id = a.dataset.id;
    if (!id.startsWith("queued-") && !id.startsWith("feed-")) return id;
  }
  return null;
}

// Insert a server status at the top (after queued posts), replacing any existing copy.
export function prependStatus(status, opts) {
  const f = feed();
  const existing = f.querySelector(`article[data-id="${CSS.escape(String(status.id))}"]`);
  const art = renderStatus(status, opts);
  if (existing) { existing.replaceWith(art); return art; }
  const firstServer = [...f.querySelectorAll("article")].find((a) => !a.dataset.id.startsWith("queued-"));
  f.insertBefore(art, firstServer || null);
  return art;
}

async function poll() {
  if (!current || document.hidden) return;
  const gen = generation;
  const f = feed();
  if (current.readOnly) {
    // try the API again; if it answers, reload the live timeline
    try {
      await api("/api/v1/instance");
      if (gen === generation) document.dispatchEvent(new CustomEvent("lifeboat:apiback"));
    } catch { /* still down */ }
    return;
  }
  const since = newestId();
  try {
    const q = new URLSearchParams({ limit: "40", ...current.params });
    if (since) q.set("since_id", since);
    const { data } = await api(`${current.path}?${q}`);
    if (gen !== generation || !Array.isArray(data)) return;
    for (const s of [...data].reverse()) {
      if (deletedIds.has(String(s.id))) continue;
      if (!f.querySelector(`article[data-id="${CSS.escape(String(s.id))}"]`)) prependStatus(s);
    }
  } catch { /* the banner reports outages */ }
  for (const a of f.querySelectorAll('article[data-state="waiting"]')) {
    try {
      const { data } = await api(`/api/v1/statuses/${encodeURIComponent(a.dataset.id)}`);
      const lb = data && data.lifeboat;
      if (lb && lb.delivery && lb.delivery !== a.dataset.state) setState(a, lb.delivery, lb.failure_reason);
    } catch (e) { if (e.status === 404) a.remove(); }
  }
}

function startPolling() {
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = setInterval(poll, pollMs());
}

export function initTimeline() {
  document.getElementById("load-older").addEventListener("click", loadOlder);
  if ("IntersectionObserver" in window) {
    observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && current && current.next && feed().children.length) loadOlder();
    }, { rootMargin: "200px" });
    observer.observe(document.getElementById("sentinel"));
  }
}
