// megalodon 10: register and build the authorize URL with megalodon, trade
// the code with PKCE through the OAuth 2 client megalodon itself uses
// (@badgateway/oauth2-client: HTTP Basic client authentication), then post,
// read home in pages along the Link header, follow, revoke.
import { OAuth2Client } from "@badgateway/oauth2-client";
import generator from "megalodon";
import { codeFromPerson, eventually, env, pkcePair, report } from "./person.mjs";

const scopes = ["read", "write", "follow"];
const anonymous = generator("mastodon", env.url);
const app = await anonymous.registerApp("megalodon on Lifeboat", { scopes, redirect_uris: env.redirect });
const { verifier, challenge } = pkcePair();
const authorizeUrl = `${app.url}&${new URLSearchParams({ code_challenge: challenge, code_challenge_method: "S256" })}`;
const code = await codeFromPerson(authorizeUrl);
const oauth = new OAuth2Client({
  server: env.url, clientId: app.client_id, clientSecret: app.client_secret,
  tokenEndpoint: "/oauth/token", authorizationEndpoint: "/oauth/authorize",
});
const token = await oauth.authorizationCode.getToken({ code, redirectUri: env.redirect, codeVerifier: verifier });
const client = generator("mastodon", env.url, token.accessToken);
const me = (await client.verifyAccountCredentials()).data;
const posted = (await client.postStatus("posted from Node")).data;
for (const n of [1, 2]) await client.postStatus(`page filler ${n}`);
await eventually(async () => (await client.getHomeTimeline({ limit: 3 })).data.length === 3);
const pages = [];
let options = { limit: 1 };
while (pages.length < 3) {
  const page = await client.getHomeTimeline(options);
  pages.push(page.data.map((status) => status.id));
  const next = /<([^>]+)>;\s*rel="next"/.exec(page.headers.link ?? "");
  if (!next) break;
  options = { limit: 1, max_id: new URL(next[1]).searchParams.get("max_id") };
}
const other = (await client.lookupAccount(env.other)).data;
const relationship = (await client.followAccount(other.id)).data;
await anonymous.revokeToken(app.client_id, app.client_secret, token.accessToken);
let revokedRefused = false;
try {
  await client.verifyAccountCredentials();
} catch (error) {
  revokedRefused = error.response?.status === 401;
}
const ids = pages.flat();
report({
  verified: me.username, posted_content: posted.content, pkce: "S256", home_has_post: ids.includes(posted.id),
  pages: pages.length, paged_distinct: ids.length === new Set(ids).size && ids.length >= 2,
  following: relationship.following, revoked_refused: revokedRefused,
});
