// Status banner: polls GET /status and describes the mode in plain words.
import { api } from "./api.js";

export const TEXTS = {
  fallback: "The main service is down. Your posts are safe here and will be delivered when it is back.",
  recovering: (n) => `Delivering: ${n} ${n === 1 ? "post" : "posts"} left.`,
  normal: "The main service is back,",
  readOnly: "Lifeboat's API is not answering: read-only, from the static feeds. Queued posts wait in this browser.",
};

const statusMs = () => Number(localStorage.getItem("lifeboat.statusMs")) || 10000;
export const banner = { mode: null, apiDown: false };

function render(mode, data) {
  const b = document.getElementById("banner");
  b.dataset.mode = mode;
  b.replaceChildren();
  if (mode === "readonly") b.textContent = TEXTS.readOnly;
  else if (mode === "fallback") b.textContent = TEXTS.fallback;
  else if (mode === "recovering") b.textContent = TEXTS.recovering(Number(data.backlog) || 0);
  else if (mode === "normal") {
    b.append(document.createTextNode(TEXTS.normal));
    if (data.primary_public_url && /^https?:\/\//i.test(data.primary_public_url)) {
      const a = document.createElement("a");
      a.href = data.primary_public_url;
      a.textContent = "go to it";
      b.append(" ", a, ".");
    }
  } else b.textContent = `Lifeboat status: ${mode}`;
}

export async function checkStatus() {
  try {
    const { data } = await api("/status", { auth: false });
    banner.apiDown = false;
    banner.mode = (data && data.mode) || "fallback";
    render(banner.mode, data || {});
  } catch (e) {
    if (e.status === 0 || e.status >= 500) {
      banner.apiDown = true;
      banner.mode = "readonly";
      render("readonly", {});
    }
  }
  return banner;
}

export function initBanner() {
  document.addEventListener("lifeboat:readonly", () => { banner.apiDown = true; render("readonly", {}); });
  checkStatus();
  setInterval(checkStatus, statusMs());
}
