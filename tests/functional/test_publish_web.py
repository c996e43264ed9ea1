"""scripts/publish_web.py on moto: what lands under web/, with which headers,
and what it cleans up."""

from __future__ import annotations

import pytest

from scripts import publish_web
from tests.conftest import BUCKET


@pytest.fixture
def s3(moto):
    from chalicelib.aws import clients as aws

    return aws.new_client("s3")


@pytest.fixture
def source(tmp_path):
    root = tmp_path / "web"
    (root / "js").mkdir(parents=True)
    files = {
        "index.html": "<!doctype html><title>Lifeboat</title>",
        "app.css": "body{}",
        "icon.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>",
        "js/main.js": "export {};",
        "js/data.json": "{}",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def _head(s3, key: str) -> tuple[str, str]:
    head = s3.head_object(Bucket=BUCKET, Key=key)
    return head["ContentType"], head["CacheControl"]


def _keys(s3) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_each_file_lands_under_web_with_its_type_and_cache_policy(s3, source):
    assert publish_web.publish(s3, BUCKET, source) == (5, 0)
    assert _head(s3, "web/index.html") == ("text/html; charset=utf-8", "no-cache")
    assert _head(s3, "web/app.css") == ("text/css; charset=utf-8", "public, max-age=300")
    assert _head(s3, "web/js/main.js") == ("text/javascript; charset=utf-8", "public, max-age=300")
    assert _head(s3, "web/icon.svg") == ("image/svg+xml", "public, max-age=300")
    assert _head(s3, "web/js/data.json") == ("application/json", "public, max-age=300")
    body = s3.get_object(Bucket=BUCKET, Key="web/js/main.js")["Body"].read()
    assert body == b"export {};"


def test_files_gone_from_the_source_are_deleted_and_nothing_outside_web(s3, source):
    s3.put_object(Bucket=BUCKET, Key="feeds/public.atom", Body=b"<feed/>")
    s3.put_object(Bucket=BUCKET, Key="webby/keep.txt", Body=b"not under web/")
    publish_web.publish(s3, BUCKET, source)
    (source / "js" / "main.js").unlink()
    (source / "js" / "next.js").write_text("export {};")

    assert publish_web.publish(s3, BUCKET, source) == (5, 1)
    assert _keys(s3) == [
        "feeds/public.atom",
        "web/app.css",
        "web/icon.svg",
        "web/index.html",
        "web/js/data.json",
        "web/js/next.js",
        "webby/keep.txt",
    ]


def test_the_page_goes_up_last_and_dot_files_stay_home(source):
    (source / ".DS_Store").write_text("finder")
    keys = [upload.key for upload in publish_web.uploads(source)]
    assert keys[-1] == "web/index.html"
    assert sorted(keys) == ["web/app.css", "web/icon.svg", "web/index.html", "web/js/data.json", "web/js/main.js"]


def test_a_source_without_the_page_is_refused_and_the_site_left_alone(s3, source, tmp_path):
    publish_web.publish(s3, BUCKET, source)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match=r"index\.html"):
        publish_web.publish(s3, BUCKET, empty)
    assert "web/index.html" in _keys(s3)


def test_main_publishes_and_invalidates_the_whole_distribution(moto, s3, source, capsys):
    from chalicelib.aws import clients as aws

    cloudfront = aws.new_client("cloudfront")
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "test",
            "Comment": "",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "web",
                        "DomainName": f"{BUCKET}.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {"TargetOriginId": "web", "ViewerProtocolPolicy": "redirect-to-https"},
        }
    )["Distribution"]["Id"]

    assert publish_web.main(["--bucket", BUCKET, "--source", str(source), "--distribution-id", distribution]) == 0

    assert "web/index.html" in _keys(s3)
    [invalidation] = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]["Items"]
    paths = cloudfront.get_invalidation(DistributionId=distribution, Id=invalidation["Id"])["Invalidation"]
    assert paths["InvalidationBatch"]["Paths"]["Items"] == ["/*"]
    assert distribution in capsys.readouterr().err
