// Fetch wrapper for the Lifeboat (Mastodon-compatible) API.
export const API = (localStorage.getItem("lifeboat.api") || location.origin).replace(/\/$/, "");
const TOKEN = "lifeboat.token";

export function token() { return localStorage.getItem(TOKEN); }
export function setToken(t) { if (t) localStorage.setItem(TOKEN, t); else localStorage.removeItem(TOKEN); }
export function signedIn() { return !!token(); }

export class ApiError extends Error {
  constructor(status, message, body) { super(message); this.status = status; this.body = body; }
}

export function parseNext(link) {
  if (!link) return null;
  for (const part of link.split(",")) {
    const m = part.match(/<([^>]+)>\s*;(.*)/);
    if (m && /rel="?([^";]*\s)?next(\s[^";]*)?"?/.test(m[2])) return m[1].trim();
  }
  return null;
}

// Returns {data, next, status, headers}. Throws ApiError (status 0 = network error).
export async function api(path, { method = "GET", body, headers = {}, auth = true, form } = {}) {
  const url = /^https?:/.test(path) ? path : API + path;
  const h = { Accept: "application/json", ...headers };
  const t = token();
  if (auth && t) h.Authorization = "Bearer " + t;
  let payload;
  if (form) { payload = new URLSearchParams(form); h["Content-Type"] = "application/x-www-form-urlencoded"; }
  else if (body !== undefined) { payload = JSON.stringify(body); h["Content-Type"] = "application/json"; }
  let res;
  try {
    res = await fetch(url, { method, headers: h, body: payload });
  } catch (e) {
    throw new ApiError(0, "Network error: " + e.message);
  }
  let data = null;
  const text = await res.text();
  if (text) { try { data = JSON.parse(text); } catch { data = text; } }
  if (!res.ok) {
    const msg = (data && (data.error_description || data.error)) || res.statusText || ("HTTP " + res.status);
    throw new ApiError(res.status, String(msg), data);
  }
  return { data, next: parseNext(res.headers.get("Link")), status: res.status, headers: res.headers };
}
