"""Structured logs and CloudWatch metrics (powertools), shared singletons.

Powertools reads POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE and
POWERTOOLS_LOG_LEVEL itself. Creating these objects touches no AWS client:
metrics are printed as CloudWatch Embedded Metric Format lines, which the
Lambda runtime ships to CloudWatch without an API call.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service="lifeboat")
metrics = Metrics(namespace="Lifeboat", service="lifeboat")


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def gauge(name: str, value: float, unit: str = "Count") -> None:
    metrics.add_metric(name=name, unit=MetricUnit[unit], value=value)


def flush_metrics() -> None:
    """Publish what this invocation recorded; silent when nothing was.

    With POWERTOOLS_METRICS_DISABLED (the local stage), powertools neither
    prints nor clears, so the set is cleared here: else it would grow and
    be printed anyway once it holds 100 values.
    """
    if metrics.metric_set:
        metrics.flush_metrics()
    metrics.clear_metrics()


@cache
def tracer():
    """powertools' X-Ray Tracer, on Lambda only and unless
    POWERTOOLS_TRACE_DISABLED is true. Imported here, not at module import:
    the X-Ray SDK adds about 200 ms to a cold start (scripts/bench_import.py),
    which local runs and tests should not pay."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() == "true"
    if disabled or not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service="lifeboat")


@contextmanager
def traced(name: str, **annotations: str) -> Iterator[None]:
    """An X-Ray subsegment around a request or job (a no-op off Lambda).
    The Tracer also patches boto3, so every AWS call shows inside it."""
    active = tracer()
    if active is None:
        yield
        return
    with active.provider.in_subsegment(name) as subsegment:
        for key, value in annotations.items():
            subsegment.put_annotation(key, value)
        yield


def run_job(name: str, job):
    """Run a scheduled job with its own correlation id, a log line with its
    result, and its metrics flushed even when it fails."""
    logger.set_correlation_id(f"{name}-{uuid.uuid4()}")
    try:
        with traced(f"## {name}"):
            result = job()
        logger.info(f"{name} finished", extra={"result": result})
        return result
    except Exception:
        logger.exception(f"{name} failed")
        raise
    finally:
        flush_metrics()
