// Compose box: remaining-characters counter, replies, and posting through the outbox.
import { enqueue } from "./outbox.js";
import { session } from "./session.js";

let replyTo = null;

const $ = (id) => document.getElementById(id);

export function updateCounter() {
  const left = session.maxChars - [...$("compose-text").value].length;
  const c = $("counter");
  c.textContent = String(left);
  c.classList.toggle("over", left < 0);
  $("post").disabled = left < 0;
}

function setReply(status) {
  replyTo = status;
  const acct = status && status.account ? status.account.acct || status.account.username : "";
  $("replying").hidden = !status;
  $("replying-text").textContent = status ? `Replying to @${acct}` : "";
  if (status) {
    const t = $("compose-text");
    if (!t.value.trim()) t.value = `@${acct} `;
    updateCounter();
    t.focus();
    t.setSelectionRange(t.value.length, t.value.length);
  }
}

export function initCompose() {
  const form = $("compose");
  const text = $("compose-text");
  text.addEventListener("input", updateCounter);
  $("reply-cancel").addEventListener("click", () => { setReply(null); text.focus(); });
  document.addEventListener("lifeboat:reply", (e) => { form.hidden = false; setReply(e.detail); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = text.value;
    const err = $("compose-error");
    err.hidden = true;
    if (!value.trim()) { err.textContent = "Write something first."; err.hidden = false; return; }
    if ([...value].length > session.maxChars) { err.textContent = `At most ${session.maxChars} characters.`; err.hidden = false; return; }
    $("post").disabled = true;
    try {
      await enqueue(value, replyTo);
      text.value = "";
      setReply(null);
    } catch (ex) {
      err.textContent = "Could not save the post: " + ex.message;
      err.hidden = false;
    } finally { updateCounter(); }
  });
  updateCounter();
}
