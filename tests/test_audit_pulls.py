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
    pulls.record_pull(request=_served_request(), repository="acme/app", digest="d")
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


@pytest.mark.parametrize("recorded", [False, True])
def test_it_counts_pulls_per_repository_in_one_update_each_per_flush(
    settings: Any, recorded: bool, django_assert_max_num_queries: Any
) -> None:
    from registry.models import Repository

    settings.HUB_AUDIT_PULLS = recorded
    settings.HUB_AUDIT_PULL_FLUSH_MS = 3_600_000
    Repository.objects.create(name="acme/app")
    Repository.objects.create(name="acme/other")
    for name in ["acme/app"] * 5 + ["acme/other"] * 2:
        pulls.record_pull(request=_served_request(), repository=name, tag="v1", digest="d")
    assert Repository.objects.get(name="acme/app").pull_count == 0  # queued, not written
    # Savepoint and its release, one UPDATE per repository; when recorded, the events (one
    # statement) and the namespace's owner (looked up once, then remembered).
    with django_assert_max_num_queries(6 if recorded else 4) as queries:
        assert pulls.flush() == 7
    assert sum("UPDATE" in q["sql"] for q in queries.captured_queries) == 2
    app = Repository.objects.get(name="acme/app")
    assert (app.pull_count, Repository.objects.get(name="acme/other").pull_count) == (5, 2)
    assert app.last_pulled_at is not None
    assert Event.objects.filter(action="manifest.pull").count() == (7 if recorded else 0)


def test_it_counts_a_pull_at_once_outside_a_server_and_shows_it(people: Any, settings: Any) -> None:
    from registry.models import Repository
    from tests.conftest import basic_auth
    from tests.helpers import push_image
    from tests.people import PASSWORD

    settings.HUB_AUDIT_PULLS = False
    alice = Client(HTTP_AUTHORIZATION=basic_auth("alice", PASSWORD))
    push_image(alice, "acme/private", "v1", layers=(b"counted",))
    for _ in range(3):
        assert alice.get("/v2/acme/private/manifests/v1").status_code == 200
    assert alice.head("/v2/acme/private/manifests/v1").status_code == 200  # not a pull
    assert Client().get("/v2/acme/private/manifests/v1").status_code in (401, 404)
    assert Repository.objects.get(name="acme/private").pull_count == 3
    browser = Client()
    browser.force_login(people.alice)
    page = browser.get("/n/acme/").content.decode()
    assert '<td class="num">3</td>' in page
