// Profile view (#/@username): heading, Follow/Unfollow, feed links, and the user's posts.
import { api, signedIn, API } from "./api.js";
import { showTimeline } from "./timeline.js";
import { session } from "./session.js";

// Replace the <head> alternate links with those for the timeline on screen.
export function setAlternates(atom, rss, title) {
  for (const l of document.head.querySelectorAll('link[rel="alternate"]')) l.remove();
  for (const [type, href] of [["application/atom+xml", atom], ["application/rss+xml", rss]]) {
    if (!href) continue;
    const l = document.createElement("link");
    l.rel = "alternate"; l.type = type; l.href = href; l.title = title;
    document.head.append(l);
  }
}

function a(href, text) { const e = document.createElement("a"); e.href = href; e.textContent = text; return e; }

async function followButton(account) {
  const me = session.me;
  if (!signedIn() || !me || me.id === account.id || me.username === account.username) return null;
  const b = document.createElement("button");
  b.type = "button"; b.className = "follow";
  let following = false;
  const set = (f) => { following = f; b.textContent = f ? "Unfollow" : "Follow"; b.setAttribute("aria-pressed", String(f)); };
  set(false);
  try {
    const { data } = await api(`/api/v1/accounts/relationships?${new URLSearchParams({ "id[]": account.id })}`);
    const rel = Array.isArray(data) ? data.find((r) => r.id === account.id) || data[0] : null;
    set(!!(rel && (rel.following || rel.requested)));
  } catch { /* assume not following */ }
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      const { data } = await api(`/api/v1/accounts/${encodeURIComponent(account.id)}/${following ? "unfollow" : "follow"}`, { method: "POST" });
      set(data && typeof data.following === "boolean" ? data.following || !!data.requested : !following);
    } catch (e) { alert("Could not change follow: " + e.message); }
    finally { b.disabled = false; }
  });
  return b;
}

export async function showProfile(username) {
  const section = document.getElementById("profile");
  section.hidden = false;
  section.replaceChildren();
  const h = document.createElement("h2");
  h.textContent = `@${username}`;
  section.append(h);
  const live = (ext) => `${API}/users/${encodeURIComponent(username)}/feed.${ext}`;
  const links = document.createElement("p");
  links.className = "feeds";
  links.append("Feeds: ", a(live("rss"), "RSS"), " ", a(live("atom"), "Atom"));
  setAlternates(live("atom"), live("rss"), `Posts by @${username}`);
  const fallbackUrl = `${location.origin}/feeds/users/${encodeURIComponent(username)}.atom`;
  let account = null;
  try {
    ({ data: account } = await api(`/api/v1/accounts/lookup?${new URLSearchParams({ acct: username })}`));
  } catch (e) {
    if (e.status === 404) {
      h.textContent = `No user @${username}`;
      document.getElementById("timeline").replaceChildren();
      document.documentElement.dataset.ready = "true";
      return;
    }
  }
  if (account) {
    h.textContent = account.display_name ? `${account.display_name} (@${account.acct || account.username})` : `@${account.acct || account.username}`;
    const fb = await followButton(account);
    if (fb) section.append(fb);
  }
  if (!account) { // API unreachable: point at the static copies of the feeds
    const stat = (ext) => `${location.origin}/feeds/users/${encodeURIComponent(username)}.${ext}`;
    links.replaceChildren("Feeds: ", a(stat("rss"), "RSS"), " ", a(stat("atom"), "Atom"));
    setAlternates(stat("atom"), stat("rss"), `Posts by @${username}`);
  }
  section.append(links);
  if (account) {
    await showTimeline({ path: `/api/v1/accounts/${encodeURIComponent(account.id)}/statuses`, fallbackUrl, title: `Posts by @${username}` });
  } else {
    // API unreachable: read-only from the static feed
    await showTimeline({ path: `/api/v1/accounts/lookup-unavailable`, fallbackUrl, title: `Posts by @${username}`, forceFallback: true });
  }
}
