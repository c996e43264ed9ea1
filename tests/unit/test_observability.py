"""Tracing is on in Lambda only, and wraps what it is given."""

from __future__ import annotations

import subprocess
import sys

from chalicelib import observability


def test_no_tracer_off_lambda(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    observability.tracer.cache_clear()
    assert observability.tracer() is None
    with observability.traced("## test"):
        pass


def test_tracing_can_be_disabled_on_lambda(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "lifeboat-api")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    observability.tracer.cache_clear()
    assert observability.tracer() is None
    observability.tracer.cache_clear()


def test_traced_opens_a_subsegment_with_annotations(monkeypatch):
    opened = []

    class Subsegment:
        def __init__(self, name):
            self.name, self.annotations = name, {}

        def put_annotation(self, key, value):
            self.annotations[key] = value

    class Provider:
        def in_subsegment(self, name):
            from contextlib import contextmanager

            @contextmanager
            def segment():
                opened.append(Subsegment(name))
                yield opened[-1]

            return segment()

    class FakeTracer:
        provider = Provider()

    monkeypatch.setattr(observability, "tracer", lambda: FakeTracer())
    with observability.traced("## GET /status", method="GET"):
        pass
    assert [(s.name, s.annotations) for s in opened] == [("## GET /status", {"method": "GET"})]


def test_importing_the_app_does_not_import_the_xray_sdk():
    code = "import sys, app; print('aws_xray_sdk' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
