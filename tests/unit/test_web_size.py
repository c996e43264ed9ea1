"""The web client ships under 100 KB of JavaScript, gzipped as served
(issue 13): people on the bad day may be on a bad network."""

from __future__ import annotations

from devtools import local_site

BUDGET_BYTES = 100 * 1024


def test_the_shipped_javascript_is_under_100_kb_gzipped():
    assert (local_site.WEB_ROOT / "js" / "main.js").is_file(), "the web client's entry module is missing"
    files, gzipped = local_site.javascript_size()
    print(f"web client JavaScript: {files} files, {gzipped} bytes gzipped")
    assert 0 < gzipped < BUDGET_BYTES


def test_every_module_the_page_loads_is_served_from_web():
    page = (local_site.WEB_ROOT / "index.html").read_text()
    assert '<script type="module" src="/js/main.js"></script>' in page
    assert "http://" not in page and "https://" not in page, "no asset may come from another origin"
