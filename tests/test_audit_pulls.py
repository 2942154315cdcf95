"""Pull events under a server are queued and written together, none lost."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory

from audit import pulls
from audit.models import Event
from tests.audit_support import actions_after, mark

pytestmark = pytest.mark.django_db


def _served_request() -> Any:
    request = RequestFactory().get("/v2/acme/app/manifests/v1", REMOTE_ADDR="192.0.2.7")
    request.META["gunicorn.socket"] = object()  # as when gunicorn serves it
    return request


def test_it_queues_pulls_under_a_server_and_writes_them_together(settings: Any) -> None:
    settings.HUB_AUDIT_PULL_FLUSH_MS = 3_600_000  # the thread stays asleep: we flush by hand
    for i in range(3):
        pulls.record_pull(
            request=_served_request(),
            action="manifest.pull",
            repository="acme/app",
            tag="v1",
            digest=f"sha256:{i:064x}",
        )
    assert not Event.objects.filter(action="manifest.pull").exists()
    assert pulls.flush() == 3
    events = Event.objects.filter(action="manifest.pull").order_by("id")
    assert [e.digest for e in events] == [f"sha256:{i:064x}" for i in range(3)]
    assert {e.client_address for e in events} == {"192.0.2.7"}
    assert pulls.flush() == 0


def test_it_writes_each_pull_at_once_when_batching_is_off(settings: Any) -> None:
    settings.HUB_AUDIT_PULL_FLUSH_MS = 0
    pulls.record_pull(
        request=_served_request(), action="manifest.pull", repository="acme/app", digest="d"
    )
    assert Event.objects.filter(action="manifest.pull").count() == 1


@pytest.mark.parametrize("recorded", [False, True])
def test_it_records_pulls_only_when_hub_audit_pulls_is_on(
    people: Any, settings: Any, recorded: bool
) -> None:
    from tests.conftest import basic_auth
    from tests.helpers import push_image
    from tests.people import PASSWORD

    alice = Client(HTTP_AUTHORIZATION=basic_auth("alice", PASSWORD))
    push_image(alice, "acme/private", "v1", layers=(b"pulled",))
    settings.HUB_AUDIT_PULLS = recorded
    since = mark()
    assert alice.get("/v2/acme/private/manifests/v1").status_code == 200
    # A refused pull is a refusal, not a pull: it is recorded either way.
    charlie = Client(HTTP_AUTHORIZATION=basic_auth("charlie", PASSWORD))
    assert charlie.get("/v2/acme/private/manifests/v1").status_code == 404
    actions = actions_after(since)
    assert actions.count("manifest.pull") == (1 if recorded else 0)
    assert "request.denied" in actions
