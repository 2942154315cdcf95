"""/healthz, /readyz and /metrics: what load balancers, orchestrators and Prometheus ask."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client
from prometheus_client import REGISTRY

from audit.models import Event
from hub.wsgi import application
from registry.storage import StorageError, get_storage
from tests.conftest import basic_auth
from tests.helpers import body, push_blob, start_upload

TOKEN = "metrics-token-for-tests"


def call(path: str, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    """Through the WSGI application itself, as gunicorn calls it."""
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    content = b"".join(application(environ, start_response))
    return answer["status"], answer["headers"], content


def test_it_answers_healthz_without_the_database() -> None:
    # No django_db mark: any query here would fail the test.
    status, headers, content = call("/healthz")
    assert status == "200 OK"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(content) == {"status": "alive"}


def test_it_answers_head_of_healthz_without_a_body() -> None:
    status, _, content = call("/healthz", "HEAD")
    assert status == "200 OK"
    assert content == b""


# readyz recycles connections as Django's handler does, which a test transaction forbids.
@pytest.mark.django_db(transaction=True)
def test_it_is_ready_when_database_and_store_answer() -> None:
    before = Event.objects.count()
    status, _, content = call("/readyz")
    assert status == "200 OK"
    assert json.loads(content) == {"status": "ready"}
    assert Event.objects.count() == before  # probes leave no audit events


@pytest.mark.django_db(transaction=True)
def test_it_is_not_ready_when_the_store_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise StorageError("bucket hub: AccessDenied")

    monkeypatch.setattr(get_storage(), "check", broken)
    status, _, content = call("/readyz")
    assert status == "503 Service Unavailable"
    assert json.loads(content) == {
        "status": "unavailable",
        "reasons": {"storage": "bucket hub: AccessDenied"},
    }


@pytest.mark.django_db(transaction=True)
def test_it_is_not_ready_when_the_database_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub import health

    class Down:
        def cursor(self) -> None:
            raise OperationalError("connection refused\nis the server running?")

    monkeypatch.setattr(health, "connection", Down())
    status, _, content = call("/readyz")
    assert status == "503 Service Unavailable"
    assert json.loads(content)["reasons"] == {"database": "connection refused"}


# --- /metrics --------------------------------------------------------------------------------


@pytest.fixture
def metrics_on(settings: Any) -> None:
    settings.HUB_METRICS_ENABLED = True
    settings.HUB_METRICS_TOKEN = TOKEN
    settings.MIDDLEWARE = ["hub.metrics_view.MetricsMiddleware", *settings.MIDDLEWARE]


def scrape(client: Client, **headers: str) -> tuple[int, str]:
    response = client.get("/metrics", **headers)
    return response.status_code, body(response).decode()


@pytest.mark.django_db
def test_it_hides_metrics_unless_enabled(settings: Any) -> None:
    settings.HUB_METRICS_ENABLED = False
    settings.HUB_METRICS_TOKEN = TOKEN
    status, _ = scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == 404


@pytest.mark.django_db
def test_it_asks_for_credentials_for_metrics(metrics_on: None) -> None:
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert scrape(Client(), HTTP_AUTHORIZATION="Bearer wrong-token")[0] == 401


@pytest.mark.django_db
def test_it_shows_metrics_to_the_token_holder(metrics_on: None) -> None:
    status, text = scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == 200
    assert "hub_registry_upload_sessions_open 0.0" in text
    assert "hub_gc_runs_total" in text or "# TYPE hub_gc_runs counter" in text


@pytest.mark.django_db
def test_it_shows_metrics_to_site_administrators_only(
    metrics_on: None, django_user_model: Any, fast_passwords: None
) -> None:
    django_user_model.objects.create_superuser("root", "root@example.com", "root-password")
    django_user_model.objects.create_user("alice", "alice@example.com", "alice-password")
    assert scrape(Client(), HTTP_AUTHORIZATION=basic_auth("root", "root-password"))[0] == 200
    assert scrape(Client(), HTTP_AUTHORIZATION=basic_auth("alice", "alice-password"))[0] == 401


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db
def test_it_counts_requests_by_route_never_by_path(
    metrics_on: None, registry_auth: dict[str, str]
) -> None:
    client = Client(**registry_auth)
    labels = {"method": "GET", "route": "v2:manifest", "status": "404"}
    before = sample("hub_http_requests_total", **labels)
    client.get("/v2/library/one/manifests/latest")
    client.get("/v2/library/two/manifests/v1")
    assert sample("hub_http_requests_total", **labels) == before + 2
    _, text = scrape(client)
    assert 'route="v2:manifest"' in text
    assert "library/one" not in text


@pytest.mark.django_db
def test_it_counts_bytes_pushed_and_pulled_and_open_uploads(
    metrics_on: None, registry_auth: dict[str, str]
) -> None:
    client = Client(**registry_auth)
    pushed, pulled = (
        sample("hub_registry_pushed_bytes_total"),
        sample("hub_registry_pulled_bytes_total"),
    )
    uploads = sample("hub_registry_upload_duration_seconds_count")
    digest = push_blob(client, "library/counted", b"x" * 1000)
    client.get(f"/v2/library/counted/blobs/{digest}")
    assert sample("hub_registry_pushed_bytes_total") == pushed + 1000
    assert sample("hub_registry_pulled_bytes_total") == pulled + 1000
    assert sample("hub_registry_upload_duration_seconds_count") == uploads + 1
    start_upload(client, "library/counted")
    _, text = scrape(client)
    assert "hub_registry_upload_sessions_open 1.0" in text
