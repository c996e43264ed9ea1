// OAuth 2 authorization code flow with PKCE (S256) against the Lifeboat API.
import { api, setToken, token } from "./api.js";

const APP = "lifeboat.app";
const PKCE = "lifeboat.pkce";
const SCOPES = "read write follow";
const redirectUri = () => location.origin + "/";

function b64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function randomString(n = 32) { return b64url(crypto.getRandomValues(new Uint8Array(n))); }

async function registerApp() {
  const cached = JSON.parse(localStorage.getItem(APP) || "null");
  if (cached && cached.redirect_uri === redirectUri() && cached.client_id) return cached;
  const { data } = await api("/api/v1/apps", {
    method: "POST", auth: false,
    body: { client_name: "Lifeboat web", redirect_uris: redirectUri(), scopes: SCOPES },
  });
  const app = { client_id: data.client_id, client_secret: data.client_secret, redirect_uri: redirectUri() };
  localStorage.setItem(APP, JSON.stringify(app));
  return app;
}

export async function signIn() {
  const app = await registerApp();
  const verifier = randomString(48);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = randomString(16);
  sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state, back: "#/home" }));
  localStorage.setItem(PKCE, JSON.stringify({ verifier, state, back: "#/home" }));
  const q = new URLSearchParams({
    response_type: "code", client_id: app.client_id, redirect_uri: app.redirect_uri,
    scope: SCOPES, state, code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${location.origin}/oauth/authorize?${q}`);
}

// Call on load: if ?code= is present, exchange it. Returns true if a token was obtained.
export async function handleRedirect() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const err = params.get("error");
  if (!code && !err) return false;
  const saved = JSON.parse(sessionStorage.getItem(PKCE) || localStorage.getItem(PKCE) || "null");
  sessionStorage.removeItem(PKCE); localStorage.removeItem(PKCE);
  const strip = () => history.replaceState(null, "", location.pathname + (saved && saved.back ? saved.back : location.hash));
  if (err || !saved || params.get("state") !== saved.state) { strip(); throw new Error(err ? "Sign in refused: " + err : "Sign in failed: state mismatch"); }
  const app = JSON.parse(localStorage.getItem(APP) || "null");
  try {
    const form = {
      grant_type: "authorization_code", code, redirect_uri: redirectUri(),
      client_id: app ? app.client_id : "", code_verifier: saved.verifier,
    };
    if (app && app.client_secret) form.client_secret = app.client_secret;
    const { data } = await api("/oauth/token", { method: "POST", auth: false, form });
    setToken(data.access_token);
  } finally { strip(); }
  return true;
}

export async function signOut() {
  const t = token();
  const app = JSON.parse(localStorage.getItem(APP) || "null");
  if (t) {
    const form = { token: t };
    if (app) { form.client_id = app.client_id; if (app.client_secret) form.client_secret = app.client_secret; }
    try { await api("/oauth/revoke", { method: "POST", form }); } catch { /* revoke best effort */ }
  }
  setToken(null);
  localStorage.removeItem("lifeboat.me");
}
