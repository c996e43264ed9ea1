// Outbox: every post is written to IndexedDB first, then sent with its Idempotency-Key.
// Kept on network error / 5xx / 429 and retried; 4xx marks it failed. One flusher at a time.
import { api, signedIn } from "./api.js";
import { renderStatus, prependStatus, setState } from "./timeline.js";
import { session } from "./session.js";

const DB = "lifeboat";
const STORE = "outbox";
const retryMs = () => Number(localStorage.getItem("lifeboat.retryMs")) || 5000;
const memory = new Map(); // used when IndexedDB is unavailable
let dbPromise = null;

function openDb() {
  if (!("indexedDB" in window)) return Promise.resolve(null);
  if (!dbPromise) {
    dbPromise = new Promise((resolve) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "key" });
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
    });
  }
  return dbPromise;
}

async function tx(mode, fn) {
  const db = await openDb();
  if (!db) return fn(null);
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const store = t.objectStore(STORE);
    let result;
    const req = fn(store);
    if (req) req.onsuccess = () => { result = req.result; };
    t.oncomplete = () => resolve(result);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error);
  });
}

export async function putItem(item) {
  memory.set(item.key, item);
  try { await tx("readwrite", (s) => (s ? s.put(item) : null)); } catch { /* memory copy remains */ }
}
export async function deleteItem(key) {
  memory.delete(key);
  try { await tx("readwrite", (s) => (s ? s.delete(key) : null)); } catch { /* ignore */ }
}
export async function allItems() {
  let items = null;
  try { items = await tx("readonly", (s) => (s ? s.getAll() : null)); } catch { items = null; }
  if (!items) items = [...memory.values()];
  return items.sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
}

function feed() { return document.getElementById("timeline"); }
function articleFor(key) { return feed().querySelector(`article[data-id="${CSS.escape("queued-" + key)}"]`); }

export function queuedStatus(item) {
  const me = session.me || {};
  return {
    id: "queued-" + item.key,
    created_at: item.created_at,
    _plain: item.text,
    in_reply_to_account_acct: item.in_reply_to_acct || null,
    account: { id: me.id, username: me.username || "you", acct: me.acct || me.username || "you", display_name: me.display_name || me.username || "You" },
  };
}

// Show (or refresh) a queued article at the top of the current feed.
export function showQueued(item) {
  const state = item.failed ? "failed" : "queued";
  let art = articleFor(item.key);
  if (!art) {
    art = renderStatus(queuedStatus(item), { state, reason: item.last_error });
    const actions = art.querySelector(".actions");
    if (item.failed) addDiscard(art, item);
    feed().prepend(art);
    if (actions && !item.failed && item.last_error) art.title = item.last_error;
  } else {
    setState(art, state, item.last_error);
    if (item.failed && !art.querySelector("button.discard")) addDiscard(art, item);
  }
  return art;
}

function addDiscard(art, item) {
  const b = document.createElement("button");
  b.type = "button"; b.className = "discard"; b.textContent = "Discard";
  b.addEventListener("click", async () => { await deleteItem(item.key); art.remove(); });
  art.querySelector(".actions").append(b);
}

export async function renderQueued() {
  for (const item of await allItems()) showQueued(item);
}

// Send one item; returns "sent" | "queued" | "failed".
async function send(item) {
  try {
    const body = { status: item.text };
    if (item.in_reply_to_id) body.in_reply_to_id = item.in_reply_to_id;
    const { data } = await api("/api/v1/statuses", { method: "POST", body, headers: { "Idempotency-Key": item.key } });
    await deleteItem(item.key);
    const art = articleFor(item.key);
    if (art) art.remove();
    if (data && data.id) prependStatus(data);
    document.dispatchEvent(new CustomEvent("lifeboat:sent", { detail: { key: item.key, status: data } }));
    return "sent";
  } catch (e) {
    if (e.status === 0 || e.status >= 500 || e.status === 429) {
      item.last_error = e.message;
      await putItem(item);
      showQueued(item);
      return "queued";
    }
    if (e.status === 401) { // not signed in any more: keep it queued until the user signs in again
      item.last_error = "Sign in to send this post";
      await putItem(item);
      showQueued(item);
      return "queued";
    }
    item.failed = true;
    item.last_error = e.message;
    await putItem(item);
    showQueued(item);
    return "failed";
  }
}

let flushing = false;
let again = false;
async function flushNow() {
  for (const item of await allItems()) {
    if (item.failed) { showQueued(item); continue; }
    const r = await send(item);
    if (r === "queued") break; // the service is unavailable; keep order and wait for the next retry
  }
}

export async function flush() {
  if (!signedIn()) return;
  if (flushing) { again = true; return; }
  flushing = true;
  try {
    do {
      again = false;
      if (navigator.locks && navigator.locks.request) await navigator.locks.request("lifeboat-outbox", flushNow);
      else await flushNow();
    } while (again);
  } finally { flushing = false; }
}

// Called by compose: write first, then send.
export async function enqueue(text, inReplyTo) {
  const item = {
    key: crypto.randomUUID(),
    text,
    in_reply_to_id: inReplyTo ? inReplyTo.id : null,
    in_reply_to_acct: inReplyTo && inReplyTo.account ? inReplyTo.account.acct || inReplyTo.account.username : null,
    created_at: new Date().toISOString(),
    last_error: null,
  };
  await putItem(item);
  showQueued(item);
  flush();
  return item;
}

export function initOutbox() {
  window.addEventListener("online", flush);
  document.addEventListener("lifeboat:rendered", renderQueued);
  setInterval(flush, retryMs());
  flush();
}
