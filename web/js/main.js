// Entry point: sign-in state, hash routing, and start-up of banner, timeline, compose and outbox.
import { api, signedIn, setToken, API } from "./api.js";
import { signIn, signOut, handleRedirect } from "./oauth.js";
import { session } from "./session.js";
import { initBanner } from "./banner.js";
import { initTimeline, showTimeline } from "./timeline.js";
import { initCompose, updateCounter } from "./compose.js";
import { initOutbox, flush } from "./outbox.js";
import { showProfile, setAlternates } from "./profile.js";

const $ = (id) => document.getElementById(id);
window.lifeboatSession = session;

function showMessage(msg) {
  const err = $("compose-error");
  err.textContent = msg;
  err.hidden = false;
  const b = $("banner");
  if (b && !b.textContent) b.textContent = msg;
}

function updateNav() {
  const inside = signedIn();
  $("signin").hidden = inside;
  $("signout").hidden = !inside;
  $("nav-home").hidden = false;
  $("compose").hidden = !inside;
  const hash = location.hash || "";
  for (const [id, h] of [["nav-home", "#/home"], ["nav-public", "#/public"]]) {
    if (hash === h) $(id).setAttribute("aria-current", "page"); else $(id).removeAttribute("aria-current");
  }
}

async function route() {
  let hash = location.hash || "";
  if (hash === "#/signin") { hash = signedIn() ? "#/home" : "#/public"; history.replaceState(null, "", location.pathname + hash); }
  if (!hash || hash === "#" || hash === "#/") {
    hash = signedIn() ? "#/home" : "#/public";
    history.replaceState(null, "", location.pathname + hash);
  }
  if (hash === "#/home" && !signedIn()) {
    hash = "#/public";
    history.replaceState(null, "", location.pathname + hash);
  }
  updateNav();
  const profile = $("profile");
  const publicFallback = `${location.origin}/feeds/public.atom`;
  if (hash.startsWith("#/@")) {
    const username = decodeURIComponent(hash.slice(3)).replace(/^@/, "");
    document.title = `@${username} – Lifeboat`;
    await showProfile(username);
    return;
  }
  profile.hidden = true;
  profile.replaceChildren();
  if (hash === "#/home") {
    document.title = "Home – Lifeboat";
    setAlternates(null, null);
    await showTimeline({ path: "/api/v1/timelines/home", fallbackUrl: publicFallback, title: "Home" });
  } else {
    document.title = "Public – Lifeboat";
    setAlternates(`${API}/timeline/public/feed.atom`, `${API}/timeline/public/feed.rss`, "Lifeboat public timeline");
    await showTimeline({ path: "/api/v1/timelines/public", fallbackUrl: publicFallback, title: "Public" });
  }
}

async function loadMe() {
  if (!signedIn()) { session.me = null; return; }
  try {
    const { data } = await api("/api/v1/accounts/verify_credentials");
    session.me = data;
    localStorage.setItem("lifeboat.me", JSON.stringify(data));
  } catch (e) {
    if (e.status === 401) { setToken(null); session.me = null; localStorage.removeItem("lifeboat.me"); }
    else session.me = JSON.parse(localStorage.getItem("lifeboat.me") || "null"); // API down: use the cached account
  }
}

async function loadInstance() {
  try {
    const { data } = await api("/api/v1/instance", { auth: false });
    const max = data && data.configuration && data.configuration.statuses && data.configuration.statuses.max_characters;
    if (max) session.maxChars = Number(max);
  } catch { /* keep the default */ }
  updateCounter();
}

async function start() {
  initBanner();
  initTimeline();
  initCompose();
  $("signin").addEventListener("click", (e) => {
    e.preventDefault();
    signIn().catch((err) => showMessage("Could not start sign in: " + err.message));
  });
  $("signout").addEventListener("click", async () => {
    $("signout").disabled = true;
    await signOut();
    $("signout").disabled = false;
    session.me = null;
    if (location.hash === "#/public") route(); else location.hash = "#/public";
  });
  try { await handleRedirect(); } catch (e) { showMessage(e.message); }
  await Promise.all([loadMe(), loadInstance()]);
  updateNav();
  window.addEventListener("hashchange", route);
  document.addEventListener("lifeboat:apiback", route);
  document.addEventListener("lifeboat:readonly", () => {
    if (!location.hash.startsWith("#/@")) {
      setAlternates(`${location.origin}/feeds/public.atom`, `${location.origin}/feeds/public.rss`, "Lifeboat public timeline");
    }
  });
  await route();
  initOutbox();
  flush();
}

start();
