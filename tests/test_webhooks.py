"""Webhooks: signed deliveries to a receiver on loopback, retries, records, safety."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import Event
from registry.webhooks import delivery
from registry.webhooks.dispatch import forget_pull_hooks
from registry.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from tests.helpers import push_image
from tests.management_api import as_, basic
from tests.people import PASSWORD, People

pytestmark = pytest.mark.django_db


@dataclass
class Receiver:
    url: str
    statuses: list[int] = field(default_factory=list)  # answered in turn; then 200
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on loopback that records every POST."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append({"headers": dict(self.headers), "body": body})
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.HUB_WEBHOOK_ALLOW_PRIVATE = True
    forget_pull_hooks()


REPO_HOOKS = "/api/repositories/acme/private/webhooks/"


def _alice() -> Client:
    return Client(HTTP_AUTHORIZATION=basic("alice", PASSWORD))


def _hook(client: Client, people: People, receiver: Receiver, **extra: Any) -> dict[str, Any]:
    body = {"url": receiver.url, "secret": "s" * 32, **extra}
    response = as_(
        client, people, "alice", "POST", "/api/repositories/acme/private/webhooks/", body
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_it_signs_and_delivers_a_push(client, people, receiver, loopback_allowed) -> None:
    hook = _hook(client, people, receiver)
    assert hook["secret"] == "s" * 32
    _, digest = push_image(_alice(), "acme/private", "1.0")
    assert delivery.deliver_due() == 1
    [got] = receiver.received
    assert got["headers"]["X-Hub-Event"] == "push"
    expected = "sha256=" + hmac.new(b"s" * 32, got["body"], hashlib.sha256).hexdigest()
    assert got["headers"]["X-Hub-Signature-256"] == expected
    payload = json.loads(got["body"])
    assert payload["repository"] == "acme/private"
    assert payload["organisation"] == "acme"
    assert payload["tag"] == "1.0"
    assert payload["digest"] == digest
    assert payload["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert payload["actor"] == {"name": "alice", "kind": "user"}
    assert payload["id"] == got["headers"]["X-Hub-Delivery"]
    assert WebhookDelivery.objects.get().state == "delivered"


def test_it_delivers_tag_deletes_and_optionally_pulls(
    client, people, receiver, loopback_allowed
) -> None:
    _hook(client, people, receiver, events=["tag_delete", "pull"])
    alice = _alice()
    push_image(alice, "acme/private", "1.0")
    alice.get("/v2/acme/private/manifests/1.0")
    assert alice.delete("/v2/acme/private/manifests/1.0").status_code == 202
    delivery.deliver_due()
    events = [json.loads(r["body"])["event"] for r in receiver.received]
    assert sorted(events) == ["pull", "tag_delete"]


def test_it_sends_no_pull_events_unless_asked(client, people, receiver, loopback_allowed) -> None:
    _hook(client, people, receiver)
    alice = _alice()
    push_image(alice, "acme/private", "1.0")
    alice.get("/v2/acme/private/manifests/1.0")
    delivery.deliver_due()
    assert [json.loads(r["body"])["event"] for r in receiver.received] == ["push"]


def test_it_delivers_an_organisation_hook_for_every_repository(
    client, people, receiver, loopback_allowed
) -> None:
    response = as_(
        client, people, "alice", "POST", "/api/orgs/acme/webhooks/", {"url": receiver.url}
    )
    assert response.status_code == 201, response.content
    push_image(_alice(), "acme/private", "1.0")
    push_image(_alice(), "acme/public", "2.0")
    push_image(_alice(), "alice/own", "3.0")  # not acme's
    delivery.deliver_due()
    repos = sorted(json.loads(r["body"])["repository"] for r in receiver.received)
    assert repos == ["acme/private", "acme/public"]


def test_it_retries_with_backoff_and_records_every_attempt(
    client, people, receiver, loopback_allowed, settings
) -> None:
    settings.HUB_WEBHOOK_RETRY_BASE = 10
    hook = _hook(client, people, receiver)
    receiver.statuses = [500, 503]
    push_image(_alice(), "acme/private", "1.0")
    assert delivery.deliver_due() == 1
    sent = WebhookDelivery.objects.get()
    assert sent.state == "pending" and sent.attempts == 1
    assert sent.next_attempt_at >= timezone.now() + timedelta(seconds=9)
    assert delivery.deliver_due() == 0  # not due yet
    for _ in range(2):
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        assert delivery.deliver_due() == 1
        sent.refresh_from_db()
    assert sent.state == "delivered" and sent.attempts == 3
    attempts = list(WebhookAttempt.objects.order_by("number").values_list("number", "status_code"))
    assert attempts == [(1, 500), (2, 503), (3, 200)]
    response = as_(client, people, "alice", "GET", f"/api/webhooks/{hook['id']}/deliveries/")
    [listed] = response.json()["results"]
    assert [a["status_code"] for a in listed["attempt_log"]] == [500, 503, 200]
    assert listed["state"] == "delivered"


def test_it_gives_up_after_the_last_attempt(client, people, receiver, loopback_allowed, settings):
    settings.HUB_WEBHOOK_MAX_ATTEMPTS = 2
    _hook(client, people, receiver)
    receiver.statuses = [500, 500, 500]
    push_image(_alice(), "acme/private", "1.0")
    for _ in range(3):
        WebhookDelivery.objects.update(next_attempt_at=timezone.now())
        delivery.deliver_due()
    sent = WebhookDelivery.objects.get()
    assert (sent.state, sent.attempts) == ("failed", 2)
    assert len(receiver.received) == 2


def test_it_switches_off_a_hook_failing_for_a_day(
    client, people, receiver, loopback_allowed
) -> None:
    hook = _hook(client, people, receiver)
    receiver.statuses = [500] * 5
    push_image(_alice(), "acme/private", "1.0")
    delivery.deliver_due()
    Webhook.objects.update(failing_since=timezone.now() - timedelta(hours=25))
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    delivery.deliver_due()
    shown = as_(client, people, "alice", "GET", f"/api/webhooks/{hook['id']}/").json()
    assert shown["enabled"] is False
    assert "has failed since" in shown["disabled_reason"]
    assert "500" in shown["disabled_reason"]
    assert Event.objects.filter(action="webhook.disable", repository="acme/private").count() == 1
    push_image(_alice(), "acme/private", "2.0")
    assert WebhookDelivery.objects.count() == 1  # a switched-off hook is sent nothing new
    # Its owner switches it back on, with a clean record.
    response = as_(
        client, people, "alice", "PATCH", f"/api/webhooks/{hook['id']}/", {"enabled": True}
    )
    assert response.json()["enabled"] is True
    assert response.json()["disabled_reason"] == ""


def test_it_refuses_loopback_and_private_targets_by_default(client, people) -> None:
    for url in (
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
    ):
        response = as_(
            client, people, "alice", "POST", "/api/repositories/acme/private/webhooks/",
            {"url": url},
        )  # fmt: skip
        assert response.status_code == 400, (url, response.content)
        assert "url" in response.json(), url
    assert not Webhook.objects.exists()


def test_it_checks_the_address_again_at_delivery(
    client, people, receiver, loopback_allowed, settings
) -> None:
    """A hook saved while allowed (or whose name now resolves elsewhere) is refused when
    the check fails at delivery time, and nothing is sent."""
    _hook(client, people, receiver)
    settings.HUB_WEBHOOK_ALLOW_PRIVATE = False
    push_image(_alice(), "acme/private", "1.0")
    delivery.deliver_due()
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("refused: 127.0.0.1 resolves to 127.0.0.1, a loopback")
    assert receiver.received == []


@pytest.mark.parametrize("who", ["bob", "charlie", "robot", "anonymous"])
def test_it_lets_only_administrators_manage_hooks(client, people, receiver, who: str) -> None:
    body = {"url": "https://example.com/hook"}
    response = as_(client, people, who, "POST", "/api/repositories/acme/private/webhooks/", body)
    assert response.status_code in (401, 403, 404)
    response = as_(client, people, who, "POST", "/api/orgs/acme/webhooks/", body)
    assert response.status_code in (401, 403, 404)
    hook = Webhook.objects.create(
        url="https://example.com/h", secret="x", repository=people.private
    )
    response = as_(client, people, who, "GET", f"/api/webhooks/{hook.pk}/")
    assert response.status_code in (401, 403, 404)
    response = as_(client, people, who, "DELETE", f"/api/webhooks/{hook.pk}/")
    assert response.status_code in (401, 403, 404)
    assert Webhook.objects.filter(pk=hook.pk).exists()


def test_it_never_shows_the_secret_again_and_audits_changes(client, people, receiver) -> None:
    hook = Webhook.objects.create(
        url="https://example.com/h", secret="x", repository=people.private
    )
    shown = as_(client, people, "alice", "GET", f"/api/webhooks/{hook.pk}/").json()
    assert "secret" not in shown
    listed = as_(client, people, "alice", "GET", "/api/repositories/acme/private/webhooks/").json()
    assert "secret" not in listed["results"][0]
    as_(client, people, "alice", "PATCH", f"/api/webhooks/{hook.pk}/", {"events": ["pull"]})
    assert as_(client, people, "alice", "DELETE", f"/api/webhooks/{hook.pk}/").status_code == 204
    changes = list(
        Event.objects.filter(action__startswith="webhook.").values_list("action", "details")
    )
    assert [a for a, _ in changes] == ["webhook.update", "webhook.delete"]
    assert changes[0][1]["after"]["events"] == ["pull"]


def test_it_writes_no_delivery_when_the_push_fails(client, people, receiver, loopback_allowed):
    _hook(client, people, receiver)
    response = _alice().put(
        "/v2/acme/private/manifests/1.0",
        data=b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}',
        content_type="application/vnd.oci.image.manifest.v1+json",
    )
    assert response.status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_it_sends_from_the_periodic_sweep_not_in_the_request(
    client, people, receiver, loopback_allowed, settings
) -> None:
    from hub.scheduler import run_due_jobs

    _hook(client, people, receiver)
    push_image(_alice(), "acme/private", "1.0")
    assert receiver.received == []  # nothing sent inline, in the pusher's request
    settings.HUB_PERIODIC_JOBS = {"registry.deliver_due_webhooks": 10}
    assert run_due_jobs() == ["registry.deliver_due_webhooks"]
    assert [json.loads(r["body"])["event"] for r in receiver.received] == ["push"]
