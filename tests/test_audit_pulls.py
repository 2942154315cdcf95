"""Pull events under a server are queued and written together, none lost."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, transaction
from django.test import Client, RequestFactory
from django.utils import timezone

from audit import pulls
from audit.models import Event
from tests.audit_support import actions_after, mark, run_beside_sealers

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
    # Savepoint and its release, one UPDATE per repository; when recorded, the events' ids
    # and the events (one statement each), the namespace's owner (looked up once, then
    # remembered), and their seals: the chain's lock (PostgreSQL), its head (and, with no
    # seal yet, its last archive) and the seals (one statement). None of it per pull.
    with django_assert_max_num_queries(11 if recorded else 4) as queries:
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


def _queue_pulls(people: Any, names: list[str]) -> None:
    for i, name in enumerate(names):
        request = _served_request()
        request.actor = people.actor("alice")
        pulls.record_pull(request=request, repository=name, tag="v1", digest=f"sha256:{i:064x}")


def test_it_seals_a_flushed_batch_in_the_flush_and_the_chains_verify(
    people: Any, settings: Any
) -> None:
    import audit
    from audit.models import Seal
    from audit.sealing import seal_pending
    from audit.verify import verify

    settings.HUB_AUDIT_PULL_FLUSH_MS = 3_600_000
    seal_pending()
    # An event of the same chain written before, not sealed yet: the sealer seals it
    # after the batch, and the chain still holds.
    earlier = audit.record(action="org.update", organisation="acme")
    _queue_pulls(people, ["acme/app", "alice/own", "acme/app", "nobody/x", "acme/app"])
    assert pulls.flush() == 5
    batch = Event.objects.filter(action="manifest.pull").order_by("id")
    assert [e.chain for e in batch] == ["org:acme", "user:alice", "org:acme", "site", "org:acme"]
    seals = {s.event_id: s for s in Seal.objects.filter(event__in=batch)}
    assert len(seals) == 5  # every pull sealed in the flush, nothing read back
    acme = [seals[e.id].seq for e in batch if e.chain == "org:acme"]
    assert acme == sorted(acme) and acme[-1] - acme[0] == 2  # in id order, contiguous
    assert not Seal.objects.filter(event_id=earlier.id).exists()
    assert seal_pending() == 1  # only the earlier event was left to the sealer
    report = verify(grace=timedelta(0))
    assert report.ok, report.problems
    assert {"org:acme", "user:alice", "site"} <= set(report.chains)


def test_it_leaves_nothing_half_written_when_the_flush_fails(
    people: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit.models import Seal
    from audit.sealing import seal_pending
    from audit.verify import verify
    from registry.models import Repository

    settings.HUB_AUDIT_PULL_FLUSH_MS = 3_600_000
    sealed = seal_pending()  # the fixtures' events
    _queue_pulls(people, ["acme/private"] * 3)

    def broken(**kwargs: Any) -> None:
        raise DatabaseError("the database went away mid-flush")

    # The events and their seals are written by then: they must go with the counts.
    monkeypatch.setattr(pulls, "pulls_counted", broken)
    assert pulls.flush() == 0
    assert not Event.objects.filter(action="manifest.pull").exists()
    assert Seal.objects.count() == sealed
    assert Repository.objects.get(name="acme/private").pull_count == 0
    monkeypatch.undo()
    assert pulls.flush() == 3  # put back and written on the next round, once
    assert Event.objects.filter(action="manifest.pull").count() == 3
    assert Seal.objects.filter(event__action="manifest.pull").count() == 3
    assert Repository.objects.get(name="acme/private").pull_count == 3
    assert verify(grace=timedelta(0)).ok


def test_it_leaves_the_batch_to_hub_audit_seal_when_sealing_is_switched_off(
    people: Any, settings: Any
) -> None:
    from audit.models import Seal
    from audit.sealing import seal_pending

    settings.HUB_AUDIT_PULL_FLUSH_MS = 3_600_000
    settings.HUB_AUDIT_SEAL_INTERVAL = -1  # sealed from cron, every event in id order
    _queue_pulls(people, ["acme/app"] * 2)
    assert pulls.flush() == 2
    assert not Seal.objects.exists()
    assert seal_pending() == Event.objects.count()


def test_it_gives_the_batch_ids_no_other_insert_takes(people: Any, settings: Any) -> None:
    import audit
    from audit.models import new_ids

    settings.HUB_AUDIT_PULL_FLUSH_MS = 3_600_000
    before = audit.record(action="org.update", organisation="acme").id
    _queue_pulls(people, ["acme/app"] * 4)
    assert pulls.flush() == 4
    ids = list(Event.objects.filter(action="manifest.pull").values_list("id", flat=True))
    assert len(set(ids)) == 4 and min(ids) > before
    after = audit.record(action="org.update", organisation="acme").id
    assert after > max(ids)  # the table's own numbering went on past the batch
    with transaction.atomic():
        taken = new_ids(Event, 3)
    assert taken == sorted(taken) and len(set(taken)) == 3 and min(taken) > after


def test_it_stores_each_pull_time_as_the_orm_does(people: Any, settings: Any) -> None:
    from datetime import UTC, datetime

    from django.db import connection

    from audit.models import datetime_adapter

    settings.HUB_AUDIT_PULL_FLUSH_MS = 3_600_000
    whole = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # no microseconds: str() drops them
    times = [whole, whole.replace(microsecond=6)]
    for when in times:
        pulls._queue.append(
            pulls.Pull(when, "acme/app", "v1", "d", True, people.actor("alice"), "192.0.2.7")
        )
    assert pulls.flush() == 2
    for when in times:
        # Found by an exact lookup: on SQLite the stored text is the text a query passes.
        assert Event.objects.get(action="manifest.pull", occurred_at=when).occurred_at == when
        if connection.vendor == "sqlite":
            adapted = connection.ops.adapt_datetimefield_value(when)
            assert datetime_adapter(connection)(when) == adapted
    assert Event.objects.filter(occurred_at__gt=whole).count() >= 1


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_chains_valid_when_workers_flush_and_seal_at_once(people: Any) -> None:
    from django.db import connection

    import audit
    from audit.verify import verify

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("needs a database that queues concurrent writers")
    alice = people.actor("alice")

    def worker(n: int) -> None:  # a gunicorn worker's flush thread, and its other events
        for round_ in range(5):
            batch = [
                pulls.Pull(timezone.now(), name, "v1", f"{n}-{round_}", True, alice)
                for name in ["acme/private", "alice/own", "acme/public"] * 4
            ]
            pulls._write(batch, seal=True)
            audit.record(action="org.update", organisation="acme", details={"n": n})

    run_beside_sealers([lambda n=n: worker(n) for n in range(2)])
    report = verify(grace=timedelta(0))
    assert report.ok, report.problems
    assert Event.objects.filter(action="manifest.pull").count() == 2 * 5 * 12
    assert not Event.objects.filter(seal__isnull=True).exists()


def test_it_waits_at_exit_for_a_flush_in_flight(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exit flush once found the queue empty while the thread was still writing the
    batch it had taken, and the worker exited: those pulls were lost (all of them, when
    they came within one flush interval)."""
    import threading

    settings.HUB_AUDIT_PULL_FLUSH_MS = 3_600_000
    for i in range(3):
        pulls.record_pull(request=_served_request(), repository="acme/app", digest=f"d{i}")
    writing, release = threading.Event(), threading.Event()
    written: list[list[str]] = []

    def slow_write(batch: Any, **kwargs: Any) -> None:  # no database: threads here
        if not writing.is_set():  # the first batch takes its time
            writing.set()
            assert release.wait(10)
        written.append([pull.digest for pull in batch])

    monkeypatch.setattr(pulls, "_write", slow_write)
    in_flight = threading.Thread(target=pulls.flush)
    in_flight.start()
    assert writing.wait(10)
    pulls.record_pull(request=_served_request(), repository="acme/app", digest="late")
    at_exit = threading.Thread(target=pulls.flush)
    at_exit.start()
    at_exit.join(0.3)
    assert at_exit.is_alive()  # waiting for the batch in flight, not gone at once
    release.set()
    in_flight.join(10)
    at_exit.join(10)
    assert written == [["d0", "d1", "d2"], ["late"]]
