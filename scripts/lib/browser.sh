# Sourced by scripts/test: the browser tests drive Debian's Chromium
# (tests/e2e/browser/), because Playwright's own browser download is blocked
# here. A fresh CI machine runs as root without it: install it there.
ensure_chromium() {
  local chromium="${CHROMIUM:-/usr/bin/chromium}"
  [ -x "$chromium" ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "The browser tests need Chromium at $chromium: run 'apt-get install chromium' as root." >&2
    return 1
  fi
  echo "Installing Debian's chromium for the browser tests..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
}

ensure_chromium
