// The test's scripted person signs in (tests/e2e/oauth_person.py): this side
// prints the authorize URL and reads the code back on stdin.
import { createInterface } from "node:readline";
import { createHash, randomBytes } from "node:crypto";

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

export async function codeFromPerson(authorizeUrl) {
  process.stdout.write(`AUTHORIZE ${authorizeUrl}\n`);
  const { value } = await lines.next();
  return value.trim();
}

export function pkcePair() {
  const verifier = randomBytes(48).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge };
}

export const env = {
  url: process.env.LIFEBOAT_URL,
  other: process.env.LB_OTHER,
  redirect: process.env.LB_REDIRECT,
};

export function report(result) {
  process.stdout.write(JSON.stringify(result) + "\n");
}

// Home timelines are fanned out on the table's stream, a moment after a
// post: poll until `check()` holds, as a person refreshing would (10 s at most).
export async function eventually(check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the home timeline");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
