// masto.js 8 (what Phanpy uses): register, sign in with PKCE S256, post,
// read home in pages along the Link header, follow, revoke.
import { createOAuthAPIClient, createRestAPIClient } from "masto";
import { codeFromPerson, eventually, env, pkcePair, report } from "./person.mjs";

const scopes = "read write follow push";
const anonymous = createRestAPIClient({ url: env.url });
const app = await anonymous.v1.apps.create({ clientName: "masto.js on Lifeboat", redirectUris: env.redirect, scopes });
const { verifier, challenge } = pkcePair();
const query = new URLSearchParams({
  response_type: "code", client_id: app.clientId, redirect_uri: env.redirect, scope: scopes,
  code_challenge: challenge, code_challenge_method: "S256",
});
const code = await codeFromPerson(`${env.url}/oauth/authorize?${query}`);
const oauth = createOAuthAPIClient({ url: env.url });
const token = await oauth.token.create({
  grantType: "authorization_code", clientId: app.clientId, clientSecret: app.clientSecret,
  redirectUri: env.redirect, code, codeVerifier: verifier, scope: scopes,
});
const masto = createRestAPIClient({ url: env.url, accessToken: token.accessToken });
const me = await masto.v1.accounts.verifyCredentials();
const posted = await masto.v1.statuses.create({ status: "posted from Node" });
for (const n of [1, 2]) await masto.v1.statuses.create({ status: `page filler ${n}` });
await eventually(async () => (await masto.v1.timelines.home.list({ limit: 3 })).length === 3);
const pages = [];
for await (const page of masto.v1.timelines.home.list({ limit: 1 })) {
  pages.push(page.map((status) => status.id));
  if (pages.length === 3) break;
}
const other = await masto.v1.accounts.lookup({ acct: env.other });
const relationship = await masto.v1.accounts.$select(other.id).follow();
await oauth.revoke({ clientId: app.clientId, clientSecret: app.clientSecret, token: token.accessToken });
let revokedRefused = false;
try {
  await masto.v1.accounts.verifyCredentials();
} catch (error) {
  revokedRefused = error.statusCode === 401;
}
const ids = pages.flat();
report({
  verified: me.username, posted_content: posted.content, pkce: "S256", home_has_post: ids.includes(posted.id),
  pages: pages.length, paged_distinct: ids.length === new Set(ids).size && ids.length >= 2,
  following: relationship.following, revoked_refused: revokedRefused,
});
