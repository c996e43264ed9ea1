"""What the local stack serves itself, on the API's origin (devtools/local_site.py):
the web client's files, never anything outside web/, and the published feeds."""

from __future__ import annotations

import gzip

import pytest

from devtools import local_site


@pytest.fixture
def web_root(tmp_path):
    (tmp_path / "js").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>Lifeboat</title>")
    (tmp_path / "js" / "main.js").write_text("export const answer = 42;\n" * 200)
    (tmp_path.parent / "secret.txt").write_text("outside")
    return tmp_path


def test_the_root_is_the_page_and_files_are_found_by_path(web_root):
    assert local_site.site_file("/", web_root) == (web_root / "index.html").resolve()
    assert local_site.site_file("/?code=abc&state=x", web_root) == (web_root / "index.html").resolve()
    assert local_site.site_file("/js/main.js", web_root) == (web_root / "js" / "main.js").resolve()


@pytest.mark.parametrize(
    "path",
    ["/../secret.txt", "/js/../../secret.txt", "/js//main.js", "/js/./main.js", "/%2e%2e/secret.txt",
     "/js\\..\\..\\secret.txt", "/status", "/api/v1/instance", "/js"],
)
def test_nothing_outside_web_and_no_api_path_is_a_site_file(web_root, path):
    assert local_site.site_file(path, web_root) is None


def test_a_file_answers_with_its_type_the_page_headers_and_a_validator(web_root):
    answer = local_site.file_answer(web_root / "js" / "main.js", None)
    assert answer.status == 200 and answer.body.startswith(b"export const")
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    again = local_site.file_answer(web_root / "js" / "main.js", f'"other", {answer.headers["ETag"]}')
    assert (again.status, again.body) == (304, b"")


def test_the_javascript_size_is_each_file_gzipped(web_root):
    raw = (web_root / "js" / "main.js").read_bytes()
    assert local_site.javascript_size(web_root) == (1, len(gzip.compress(raw, compresslevel=9, mtime=0)))
    assert local_site.javascript_size(web_root)[1] < len(raw) / 10


def test_a_published_feed_is_served_from_the_bucket_and_a_missing_one_is_a_json_404(moto):
    from chalicelib import wiring

    s3, bucket = wiring.s3(), wiring.settings().bucket_name
    s3.put_object(Bucket=bucket, Key="feeds/public.atom", Body=b"<feed/>", ContentType="application/atom+xml",
                  CacheControl="public, max-age=60")

    answer = local_site.feed_answer(s3, bucket, "/feeds/public.atom?x=1", None)
    assert (answer.status, answer.body) == (200, b"<feed/>")
    assert answer.headers["Content-Type"] == "application/atom+xml"
    assert answer.headers["Cache-Control"] == "public, max-age=60"
    assert local_site.feed_answer(s3, bucket, "/feeds/public.atom", answer.headers["ETag"]).status == 304
    missing = local_site.feed_answer(s3, bucket, "/feeds/users/nobody.atom", None)
    assert missing.status == 404 and b'"not_found"' in missing.body
