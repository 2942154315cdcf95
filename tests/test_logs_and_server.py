"""JSON log lines, and the gunicorn options `hub serve` runs with."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import RequestFactory

from audit.context import AuditContextMiddleware
from hub import server
from hub.logs import JsonFormatter, JsonGunicornLogger


def record(message: str, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("hub.test", logging.WARNING, __file__, 1, message, (), None)
    rec.__dict__.update(extra)
    return rec


def test_it_writes_one_json_object_per_line() -> None:
    line = JsonFormatter().format(record("disk %s", status=507))
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "WARNING"
    assert data["logger"] == "hub.test"
    assert data["status"] == 507
    assert dt.datetime.fromisoformat(data["time"]).tzinfo is not None
    assert "request_id" not in data


def test_it_logs_the_request_id_of_the_current_request() -> None:
    lines: list[str] = []

    def view(request: object) -> object:
        from django.http import HttpResponse

        lines.append(JsonFormatter().format(record("inside the view")))
        return HttpResponse()

    request = RequestFactory().get("/v2/", HTTP_X_REQUEST_ID="req-42")
    response = AuditContextMiddleware(view)(request)  # type: ignore[arg-type]
    assert json.loads(lines[0])["request_id"] == "req-42"
    assert response["X-Request-ID"] == "req-42"
    assert request.META["hub.request_id"] == "req-42"


def test_it_writes_access_lines_with_request_fields(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = SimpleNamespace(
        accesslog="-",
        errorlog="-",
        loglevel="info",
        logconfig=None,
        logconfig_dict={},
        logconfig_json=None,
        syslog=False,
        disable_redirect_access_to_syslog=False,
        capture_output=False,
        access_log_format="",
        user=0,
        group=0,
    )
    logger = JsonGunicornLogger(cfg)
    environ = {
        "REQUEST_METHOD": "PATCH",
        "PATH_INFO": "/v2/alice/app/blobs/uploads/1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_USER_AGENT": "docker/27",
        "hub.request_id": "req-7",
    }
    resp = SimpleNamespace(status="202 Accepted", sent=0)
    logger.access(resp, None, environ, dt.timedelta(milliseconds=1500))
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert data["request_id"] == "req-7"
    assert (data["method"], data["status"], data["duration"]) == ("PATCH", 202, 1.5)
    assert data["path"] == "/v2/alice/app/blobs/uploads/1"


def test_it_uses_the_json_logger_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_LOG_FORMAT", raising=False)
    plain = server.gunicorn_options(bind="127.0.0.1:5000", workers=1, threads=1)
    assert "logger_class" not in plain
    monkeypatch.setenv("HUB_LOG_FORMAT", "json")
    json_options = server.gunicorn_options(bind="127.0.0.1:5000", workers=1, threads=1)
    assert json_options["logger_class"] == "hub.logs.JsonGunicornLogger"
    assert json_options["worker_class"] == "hub.worker.HubWorker"


def test_it_empties_an_operators_metrics_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"old")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    path, owned = server.metrics_directory()
    assert (path, owned) == (tmp_path, False)
    assert list(tmp_path.iterdir()) == []


def test_it_makes_its_own_metrics_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    path, owned = server.metrics_directory()
    try:
        assert owned and path.is_dir() and path.name.startswith("hub-metrics-")
    finally:
        path.rmdir()
