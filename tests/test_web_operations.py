"""Operations on the settings pages: webhooks, tag policies with a retention preview, the
namespace quota; the CSRF failure page; image platforms in the tag list."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from audit.models import Event
from registry.models import Tag
from registry.policies.models import Policy, Quota
from registry.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery
from tests.helpers import index_manifest, push_image, put_manifest
from tests.people import People
from tests.test_web_pages import CONFIG, page, pusher, signed_in

pytestmark = pytest.mark.django_db

SETTINGS = "/r/acme/private/-/settings/"
ORG_OPS = "/orgs/acme/operations/"


@pytest.fixture
def private_hooks(settings: Any) -> None:
    settings.HUB_WEBHOOK_ALLOW_PRIVATE = True


def hook_form(url: str, *events: str, secret: str = "") -> dict[str, Any]:
    return {"form": "webhook", "hook-url": url, "hook-events": list(events), "hook-secret": secret}


# --- webhooks -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [SETTINGS, ORG_OPS])
def test_it_adds_a_webhook_and_shows_its_secret_once(
    people: People, private_hooks: None, url: str
) -> None:
    alice = signed_in(people.alice)
    response = alice.post(url, hook_form("http://127.0.0.1:9/hook", "push", "pull"), follow=True)
    hook = Webhook.objects.get()
    assert hook.on_push and hook.on_pull and not hook.on_tag_delete
    assert (hook.repository, hook.organisation) == (
        (people.private, None) if url == SETTINGS else (None, people.acme)
    )
    assert hook.secret in response.content.decode()
    assert hook.secret not in page(alice, url)
    assert "http://127.0.0.1:9/hook" in page(alice, url)
    assert Event.objects.filter(action="webhook.create").exists()


def test_it_shows_why_a_webhook_url_is_refused_next_to_the_field(people: People) -> None:
    alice = signed_in(people.alice)
    html = alice.post(SETTINGS, hook_form("http://127.0.0.1:9/hook", "push")).content.decode()
    assert "loopback address" in html and 'id="id_hook-url_error"' in html
    html = alice.post(
        SETTINGS, hook_form("https://example.com/", "push", secret="short")
    ).content.decode()
    assert "at least 16 characters" in html
    html = alice.post(SETTINGS, hook_form("https://example.com/")).content.decode()
    assert "This field is required." in html
    assert not Webhook.objects.exists()


def test_it_lists_recent_deliveries_with_their_status(people: People) -> None:
    hook = Webhook.objects.create(
        repository=people.private, url="https://example.com/h", secret="s"
    )
    now = timezone.now()
    sent = WebhookDelivery.objects.create(
        webhook=hook, event="push", payload="{}", state="delivered", attempts=1, next_attempt_at=now
    )
    WebhookAttempt.objects.create(
        delivery=sent, number=1, started_at=now, duration_ms=5, status_code=204
    )
    failed = WebhookDelivery.objects.create(
        webhook=hook, event="tag_delete", payload="{}", state="failed", next_attempt_at=now
    )
    WebhookAttempt.objects.create(
        delivery=failed, number=1, started_at=now, duration_ms=5, error="connection refused"
    )
    html = page(signed_in(people.alice), SETTINGS)
    assert "HTTP 204" in html and "delivered" in html
    assert "connection refused" in html and "failed" in html


def test_it_asks_before_deleting_a_webhook(people: People) -> None:
    hook = Webhook.objects.create(
        repository=people.private, url="https://example.com/h", secret="s"
    )
    alice = signed_in(people.alice)
    asked = alice.post(SETTINGS, {"form": "delete-webhook", "id": hook.pk})
    assert "Yes, delete the webhook to https://example.com/h" in asked.content.decode()
    assert Webhook.objects.exists()
    alice.post(SETTINGS, {"form": "delete-webhook", "id": hook.pk, "confirmed": "yes"})
    assert not Webhook.objects.exists()
    assert Event.objects.filter(action="webhook.delete").exists()


def test_it_deletes_no_webhook_of_another_scope(people: People) -> None:
    org_hook = Webhook.objects.create(organisation=people.acme, url="https://e.com/", secret="s")
    signed_in(people.alice).post(
        SETTINGS, {"form": "delete-webhook", "id": org_hook.pk, "confirmed": "yes"}
    )
    assert Webhook.objects.filter(pk=org_hook.pk).exists()


@pytest.mark.parametrize("url", [SETTINGS, ORG_OPS])
def test_it_keeps_operations_from_bob_and_charlie(
    people: People, private_hooks: None, url: str
) -> None:
    form = hook_form("http://127.0.0.1:9/hook", "push")
    bob = signed_in(people.bob)
    assert bob.get(url).status_code == 403
    assert bob.post(url, form).status_code == 403
    charlie = signed_in(people.charlie)
    assert charlie.get(url).status_code == 404
    assert charlie.post(url, form).status_code == 404
    assert Client().get(url).status_code == 404
    assert not Webhook.objects.exists()


# --- policies -------------------------------------------------------------------------------


def policy_form(**values: Any) -> dict[str, Any]:
    return {"form": "policy", **{f"policy-{k}": v for k, v in values.items()}}


def test_it_saves_a_repository_policy(people: People) -> None:
    alice = signed_in(people.alice)
    response = alice.post(
        SETTINGS,
        policy_form(
            immutable_tags="v*\nrelease-?\n",
            retention_enabled="on",
            keep_last="3",
            keep_patterns="latest",
            remove_older_than_days="",
        ),
    )
    assert response.status_code == 302
    policy = Policy.objects.get(repository=people.private)
    assert policy.immutable_tags == ["v*", "release-?"] and policy.keep_patterns == ["latest"]
    assert policy.retention_enabled and policy.keep_last == 3
    assert policy.remove_older_than_days is None
    assert Event.objects.filter(action="policy.set", repository="acme/private").exists()
    assert "release-?" in page(alice, SETTINGS)


def test_it_shows_policy_errors_next_to_the_field(people: People) -> None:
    html = (
        signed_in(people.alice)
        .post(SETTINGS, policy_form(keep_last="-1", remove_older_than_days="0"))
        .content.decode()
    )
    assert 'id="id_policy-keep_last_error"' in html
    assert 'id="id_policy-remove_older_than_days_error"' in html
    assert not Policy.objects.exists()


def _tags(people: People, *names_and_ages: tuple[str, int]) -> None:
    client = pusher("alice")
    for name, days in names_and_ages:
        push_image(client, "acme/private", name, config=CONFIG)
        Tag.objects.filter(repository=people.private, name=name).update(
            updated_at=timezone.now() - timedelta(days=days)
        )


def test_it_previews_retention_without_saving_or_removing(people: People) -> None:
    _tags(people, ("old", 40), ("new", 1), ("latest", 50))
    html = (
        signed_in(people.alice)
        .post(
            SETTINGS,
            {**policy_form(remove_older_than_days="30", keep_patterns="latest"), "preview": "1"},
        )
        .content.decode()
    )
    assert "Retention would remove 1 tag now" in html
    assert "<td>old</td>" in html and "<td>new</td>" not in html
    assert "<td>latest</td>" not in html
    assert not Policy.objects.exists()
    assert Tag.objects.filter(repository=people.private).count() == 3


def test_it_previews_an_organisations_retention_across_its_repositories(people: People) -> None:
    _tags(people, ("old", 40))
    html = (
        signed_in(people.alice)
        .post(ORG_OPS, {**policy_form(remove_older_than_days="30"), "preview": "1"})
        .content.decode()
    )
    assert "Retention would remove 1 tag now" in html and "acme/private" in html


# --- quota ----------------------------------------------------------------------------------


def test_it_shows_the_quota_to_members_and_lets_site_admins_set_it(people: People) -> None:
    admin = signed_in(people.admin)
    response = admin.post("/n/acme/", {"quota-limit_mib": "5"})
    assert response.status_code == 302
    assert Quota.objects.get(namespace__name="acme").limit_bytes == 5 * 1024 * 1024
    html = page(signed_in(people.bob), "/n/acme/")
    assert "of its quota of 5.0\xa0MB" in html and "Save quota" not in html
    assert signed_in(people.alice).post("/n/acme/", {"quota-limit_mib": ""}).status_code == 403
    assert Quota.objects.exists()
    admin.post("/n/acme/", {"quota-limit_mib": ""})
    assert not Quota.objects.exists()
    assert Event.objects.filter(action="quota.set").count() == 2


def test_it_hides_the_quota_from_charlie(people: People) -> None:
    Quota.objects.create(namespace=people.private.namespace, limit_bytes=1024)
    html = page(signed_in(people.charlie), "/n/acme/")  # acme/public is public
    assert "Storage" not in html and "quota" not in html
    assert signed_in(people.charlie).post("/n/acme/", {"quota-limit_mib": ""}).status_code == 403
    assert signed_in(people.charlie).get("/n/alice/").status_code == 404


# --- CSRF -----------------------------------------------------------------------------------


def test_it_answers_an_expired_form_in_hubs_look(people: People) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.alice)
    response = client.post("/orgs/acme/", {"form": "settings", "display_name": "x"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "The form expired" in html and "Reload the page" in html and "/static/hub.css" in html
    people.acme.refresh_from_db()
    assert people.acme.display_name == ""


def test_it_leaves_the_apis_csrf_answer_alone(people: People) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.alice)
    response = client.post("/api/orgs/", {"name": "x"})
    assert "The form expired" not in response.content.decode()


# --- platforms ------------------------------------------------------------------------------


def test_it_shows_an_images_platform_from_its_config_in_the_tag_list(
    people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = pusher("alice")
    push_image(client, "acme/public", "arm", config=CONFIG)
    amd = json.dumps({"os": "linux", "architecture": "amd64", "variant": "v3"}).encode()
    child, _ = push_image(client, "acme/public", "amd", config=amd)
    index = json.loads(index_manifest([(child, "application/vnd.oci.image.manifest.v1+json")]))
    index["manifests"][0]["platform"] = {"os": "linux", "architecture": "amd64"}
    put_manifest(client, "acme/public", "multi", json.dumps(index).encode(), index["mediaType"])
    html = page(Client(), "/r/acme/public/")
    assert "linux/arm64" in html and "linux/amd64/v3" in html and "linux/amd64" in html
    # A second render reads the platforms from the cache, not the store.
    import web.images

    reads: list[str] = []
    store = web.images.get_storage()
    real_read = store.blob_read

    def counted(digest: str, *args: Any) -> Any:
        reads.append(digest)
        return real_read(digest, *args)

    monkeypatch.setattr(store, "blob_read", counted)
    monkeypatch.setattr(web.images, "get_storage", lambda: store)
    assert "linux/arm64" in page(Client(), "/r/acme/public/")
    assert reads == []
    cache.clear()
    assert "linux/arm64" in page(Client(), "/r/acme/public/")
    assert len(reads) == 2  # the two images' configs, once each
