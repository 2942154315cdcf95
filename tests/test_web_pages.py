"""The web UI's pages, for each viewer: alice (owner), bob (acme/devs), charlie (nobody),
anonymous. Whatever teams.permissions hides is absent from every list, count and page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from accounts.actions import token_create
from accounts.models import AccessToken
from audit.models import Event
from audit.sealing import seal_pending
from registry import mediatypes as mt
from registry.models import Policy, Tag
from teams import actions
from teams.models import Level, Membership, Organisation, RepositoryGrant, TeamMember
from tests.conftest import basic_auth
from tests.helpers import index_manifest, push_image, put_manifest
from tests.people import PASSWORD, People, make_repository

pytestmark = pytest.mark.django_db

CONFIG = json.dumps(
    {
        "architecture": "arm64",
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": {
            "Entrypoint": ["/bin/app"],
            "Cmd": ["--serve"],
            "Env": ["PATH=/usr/bin", "MODE=prod"],
            "Labels": {"org.opencontainers.image.source": "https://example.com/app"},
            "ExposedPorts": {"8080/tcp": {}},
        },
        "history": [{"created_by": "COPY app /bin/app"}],
        "rootfs": {"type": "layers", "diff_ids": []},
    }
).encode()


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def viewer(people: People, who: str) -> Client:
    return Client() if who == "anonymous" else signed_in(getattr(people, who))


def pusher(username: str) -> Client:
    return Client(HTTP_AUTHORIZATION=basic_auth(username, PASSWORD))


def page(client: Client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.content.decode()


# --- foundations ----------------------------------------------------------------------------


def test_it_serves_the_stylesheet_and_htmx_with_whitenoise(client: Client) -> None:
    for url in ("/static/hub.css", "/static/vendor/htmx/htmx.min.js", "/static/hub.js"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_it_renders_sign_in_and_sign_up_in_hubs_look(client: Client) -> None:
    for url in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        html = page(client, url)
        assert "Skip to content" in html and "/static/hub.css" in html, url


def test_it_answers_404_in_hubs_look_but_leaves_the_registry_alone(client: Client) -> None:
    html = page(client, "/no/such/page/", 404)
    assert "Skip to content" in html and "Nothing here" in html
    response = client.get("/v2/nope/nope/nope/x/manifests")
    assert b"Skip to content" not in response.content


def test_it_renders_a_500_page_without_the_database(rf: Any) -> None:
    from web.views.errors import server_error

    response = server_error(rf.get("/"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content


# --- home, explore, namespaces --------------------------------------------------------------


def test_it_shows_anonymous_visitors_only_public_repositories(people: People) -> None:
    html = page(Client(), "/")
    assert "acme/public" in html
    assert "acme/private" not in html and "alice/own" not in html


def test_it_shows_alice_her_repositories_organisations_and_activity(people: People) -> None:
    push_image(pusher("alice"), "alice/own", "1.0")
    html = page(signed_in(people.alice), "/")
    assert "alice/own" in html and "acme/private" in html
    assert "/orgs/acme/" in html
    assert "manifest.push" in html


@pytest.mark.parametrize("url", ["/", "/explore/", "/explore/?q=own", "/explore/?q=private"])
def test_it_shows_charlie_nothing_of_alices(people: People, url: str) -> None:
    push_image(pusher("alice"), "alice/own", "1.0")
    html = page(signed_in(people.charlie), url)
    assert "alice/own" not in html and "acme/private" not in html
    assert "/orgs/acme/" not in html and "manifest.push" not in html


def test_it_counts_only_what_the_viewer_may_see_in_a_search(people: People) -> None:
    assert "1 repository" in page(signed_in(people.charlie), "/explore/?q=acme")
    assert "2 repositories" in page(signed_in(people.bob), "/explore/?q=acme")


@pytest.mark.parametrize(
    ("who", "url", "status"),
    [
        ("charlie", "/n/alice/", 404),
        ("anonymous", "/n/alice/", 404),
        ("bob", "/n/alice/", 404),
        ("alice", "/n/alice/", 200),
        ("charlie", "/n/acme/", 200),
        ("charlie", "/n/nobody/", 404),
    ],
)
def test_it_shows_a_namespace_only_to_who_may_see_into_it(
    people: People, who: str, url: str, status: int
) -> None:
    page(viewer(people, who), url, status)


def test_it_lists_a_namespaces_repositories_as_the_viewer_may_see_them(people: People) -> None:
    push_image(pusher("bob"), "acme/private", "1.0", layers=(b"x" * 3000,))
    charlie = page(signed_in(people.charlie), "/n/acme/")
    assert "acme/public" in charlie and "acme/private" not in charlie
    bob = page(signed_in(people.bob), "/n/acme/")
    assert "acme/private" in bob and "2.9\xa0KB" in bob


# --- repositories ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "name", "status"),
    [
        ("charlie", "alice/own", 404),
        ("anonymous", "alice/own", 404),
        ("bob", "alice/own", 404),
        ("alice", "alice/own", 200),
        ("charlie", "acme/private", 404),
        ("bob", "acme/private", 200),
        ("robot", "acme/private", 404),  # robots sign in to the registry, not the web UI
        ("anonymous", "acme/public", 200),
        ("charlie", "acme/nothing", 404),
    ],
)
def test_it_shows_a_repository_only_to_who_may_pull_it(
    people: People, who: str, name: str, status: int
) -> None:
    client = Client() if who == "robot" else viewer(people, who)
    page(client, f"/r/{name}/", status)


def test_it_says_how_to_push_to_an_empty_repository(people: People) -> None:
    html = page(signed_in(people.bob), "/r/acme/private/")
    assert "has no tags yet" in html
    assert "docker push testserver/acme/private:1.0" in html
    assert "docker pull testserver/acme/private" in html and "data-copy" in html


def test_it_lists_tags_with_digest_size_and_pusher(people: People) -> None:
    _, digest = push_image(pusher("bob"), "acme/private", "1.0", layers=(b"y" * 2048,))
    html = page(signed_in(people.alice), "/r/acme/private/")
    assert "1.0" in html and digest[:19] in html
    assert "by bob" in html
    assert f"/r/acme/private/-/manifests/{digest}/" in html


def test_it_hides_who_pushed_from_viewers_outside_the_organisation(people: People) -> None:
    push_image(pusher("alice"), "acme/public", "1.0")
    html = page(signed_in(people.charlie), "/r/acme/public/")
    assert "1.0" in html and "by alice" not in html and "Activity" not in html


def test_it_filters_sorts_and_pages_tags(people: People, settings: Any) -> None:
    settings.HUB_WEB_PAGE_SIZE = 2
    client = pusher("alice")
    for tag in ("v1", "v2", "v3", "other"):
        push_image(client, "acme/public", tag, layers=(tag.encode(),))
    alice = signed_in(people.alice)
    filtered = page(alice, "/r/acme/public/?q=v&sort=name")
    assert ">v1<" in filtered and ">v2<" in filtered and ">v3<" not in filtered
    assert "Page 1 of 2" in filtered
    second = page(alice, "/r/acme/public/?q=v&sort=name&page=2")
    assert ">v3<" in second and ">other<" not in second
    backwards = page(alice, "/r/acme/public/?sort=-name")
    assert ">v3<" in backwards and ">v2<" in backwards and ">v1<" not in backwards


def test_it_answers_htmx_with_the_tag_table_only(people: People) -> None:
    push_image(pusher("alice"), "acme/public", "1.0")
    response = signed_in(people.alice).get("/r/acme/public/?q=1", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="tags">') and "<html" not in html


def test_it_renders_the_description_as_sanitised_markdown(people: People) -> None:
    actions.repository_update(
        repository=people.public,
        description="# Title\n\n**bold** <script>alert(1)</script> [x](javascript:alert(1))"
        ' <img src="https://tracker.example/p.gif" onerror="alert(1)">',
    )
    html = page(Client(), "/r/acme/public/")
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html
    assert "<script>alert" not in html and "javascript:" not in html
    assert "tracker.example" not in html and "onerror" not in html


# --- deleting a tag -------------------------------------------------------------------------


def test_it_lets_an_admin_delete_a_tag_after_confirming(people: People) -> None:
    push_image(pusher("alice"), "acme/private", "1.0")
    alice = signed_in(people.alice)
    confirm = page(alice, "/r/acme/private/-/tags/1.0/delete/")
    assert "Delete the tag" in confirm and "csrfmiddlewaretoken" in confirm
    response = alice.post("/r/acme/private/-/tags/1.0/delete/")
    assert response.status_code == 302
    assert not Tag.objects.filter(repository=people.private, name="1.0").exists()
    assert Event.objects.filter(action="tag.delete", tag="1.0", actor_name="alice").exists()


def test_it_says_why_an_immutable_tag_stays(people: People) -> None:
    push_image(pusher("alice"), "acme/private", "1.0")
    Policy.objects.create(organisation=people.acme, immutable_tags=["1.*"])
    alice = signed_in(people.alice)
    response = alice.post("/r/acme/private/-/tags/1.0/delete/", follow=True)
    assert response.status_code == 200
    assert "is immutable (pattern &#x27;1.*&#x27;)" in response.content.decode()
    assert Tag.objects.filter(repository=people.private, name="1.0").exists()


def test_it_refuses_to_delete_a_tag_for_a_writer(people: People) -> None:
    push_image(pusher("bob"), "acme/private", "1.0")
    bob = signed_in(people.bob)
    assert "/-/tags/1.0/delete/" not in page(bob, "/r/acme/private/")
    page(bob, "/r/acme/private/-/tags/1.0/delete/", 403)
    assert bob.post("/r/acme/private/-/tags/1.0/delete/").status_code == 403
    assert Tag.objects.filter(repository=people.private, name="1.0").exists()


def test_it_answers_404_to_charlie_deleting_alices_tag(people: People) -> None:
    push_image(pusher("alice"), "alice/own", "1.0")
    assert signed_in(people.charlie).post("/r/alice/own/-/tags/1.0/delete/").status_code == 404
    assert Tag.objects.filter(name="1.0").exists()


def test_it_needs_csrf_to_delete_a_tag(people: People) -> None:
    push_image(pusher("alice"), "acme/private", "1.0")
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.alice)
    assert client.post("/r/acme/private/-/tags/1.0/delete/").status_code == 403
    assert Tag.objects.filter(name="1.0").exists()


# --- manifests ------------------------------------------------------------------------------


def test_it_shows_an_images_layers_and_config(people: People) -> None:
    _, digest = push_image(
        pusher("alice"),
        "acme/public",
        "1.0",
        config=CONFIG,
        layers=(b"a" * 1500, b"b" * 10),
    )
    html = page(signed_in(people.alice), f"/r/acme/public/-/manifests/{digest}/")
    assert mt.OCI_MANIFEST in html and "application/vnd.oci.image.layer.v1.tar+gzip" in html
    assert "1.5\xa0KB" in html and "10\xa0bytes" in html
    assert "linux/arm64" in html and "/bin/app" in html and "--serve" in html
    assert "MODE=prod" in html and "8080/tcp" in html
    assert "org.opencontainers.image.source=https://example.com/app" in html
    assert "COPY app /bin/app" in html
    assert "Tag history" in html and "by alice" in html


def test_it_shows_an_indexs_platforms_and_a_manifests_referrers(people: People) -> None:
    client = pusher("alice")
    child, child_digest = push_image(client, "acme/public", None or "amd", config=CONFIG)
    index = json.loads(index_manifest([(child, mt.OCI_MANIFEST)]))
    index["manifests"][0]["platform"] = {"os": "linux", "architecture": "amd64"}
    content = json.dumps(index).encode()
    assert put_manifest(client, "acme/public", "multi", content, mt.OCI_INDEX).status_code == 201
    from tests.helpers import digest_of

    html = page(Client(), f"/r/acme/public/-/manifests/{digest_of(content)}/")
    assert "linux/amd64" in html and f"/r/acme/public/-/manifests/{child_digest}/" in html
    assert "linux/amd64" in page(Client(), "/r/acme/public/")
    _, sig_digest = push_image(
        client,
        "acme/public",
        "sig",
        artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json",
        subject={"mediaType": mt.OCI_MANIFEST, "digest": child_digest, "size": len(child)},
    )
    html = page(Client(), f"/r/acme/public/-/manifests/{child_digest}/")
    assert sig_digest[:19] in html and "application/vnd.dev.cosign.artifact.sig.v1+json" in html


def test_it_answers_404_for_a_manifest_charlie_may_not_see(people: People) -> None:
    _, digest = push_image(pusher("alice"), "alice/own", "1.0")
    page(signed_in(people.charlie), f"/r/alice/own/-/manifests/{digest}/", 404)
    page(signed_in(people.alice), f"/r/alice/own/-/manifests/{digest}/")
    page(signed_in(people.alice), "/r/alice/own/-/manifests/sha256:00/", 404)


# --- organisations and teams ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"), [("alice", 200), ("bob", 200), ("charlie", 404), ("anonymous", 404)]
)
def test_it_shows_an_organisation_only_to_its_members(
    people: People, who: str, status: int
) -> None:
    page(viewer(people, who), "/orgs/acme/", status)
    page(viewer(people, who), "/orgs/acme/teams/devs/", status)


def test_it_shows_robots_and_default_grants_to_owners_only(people: People) -> None:
    assert "acme+ci" not in page(signed_in(people.bob), "/orgs/acme/")
    alice = page(signed_in(people.alice), "/orgs/acme/")
    assert "acme+ci" in alice and "Default grants" in alice


def test_it_creates_an_organisation(people: People) -> None:
    charlie = signed_in(people.charlie)
    response = charlie.post("/orgs/new/", {"name": "widgets", "display_name": "Widgets Ltd"})
    assert response.status_code == 302 and response["Location"] == "/orgs/widgets/"
    org = Organisation.objects.get(name="widgets")
    assert Membership.objects.get(organisation=org).user == people.charlie
    assert "Widgets Ltd" in page(charlie, "/orgs/widgets/")


@pytest.mark.parametrize(("name", "message"), [("acme", "taken"), ("Bad Name", "lowercase")])
def test_it_refuses_a_bad_organisation_name_with_a_message(
    people: People, name: str, message: str
) -> None:
    response = signed_in(people.charlie).post("/orgs/new/", {"name": name})
    assert response.status_code == 200 and message in response.content.decode()


def test_it_lets_an_owner_add_members_and_teams(people: People) -> None:
    alice = signed_in(people.alice)
    response = alice.post(
        "/orgs/acme/", {"form": "member", "member-username": "charlie", "member-role": "member"}
    )
    assert response.status_code == 302
    assert Membership.objects.filter(organisation=people.acme, user=people.charlie).exists()
    response = alice.post("/orgs/acme/", {"form": "team", "team-name": "ops"})
    assert response["Location"] == "/orgs/acme/teams/ops/"
    bad = alice.post("/orgs/acme/", {"form": "member", "member-username": "nobody"})
    assert "There is no user of that name" in bad.content.decode()


def test_it_keeps_the_last_owner(people: People) -> None:
    alice = signed_in(people.alice)
    alice.post("/orgs/acme/", {"form": "remove-member", "username": "alice", "confirmed": "yes"})
    assert Membership.objects.filter(organisation=people.acme, user=people.alice).exists()


def test_it_confirms_before_removing_a_member(people: People) -> None:
    alice = signed_in(people.alice)
    asked = alice.post("/orgs/acme/", {"form": "remove-member", "username": "bob"})
    html = asked.content.decode()
    assert "Remove bob from acme?" in html and 'name="confirmed" value="yes"' in html
    assert Membership.objects.filter(organisation=people.acme, user=people.bob).exists()
    alice.post("/orgs/acme/", {"form": "remove-member", "username": "bob", "confirmed": "yes"})
    assert not Membership.objects.filter(organisation=people.acme, user=people.bob).exists()
    assert not TeamMember.objects.filter(user=people.bob).exists()
    asked = alice.post("/orgs/acme/teams/devs/", {"form": "remove-member", "username": "x"})
    assert asked.status_code == 302  # no such user: nothing to confirm


def test_it_refuses_organisation_changes_from_a_member(people: People) -> None:
    response = signed_in(people.bob).post("/orgs/acme/", {"form": "team", "team-name": "evil"})
    assert response.status_code == 403
    assert not people.acme.teams.filter(name="evil").exists()


def test_it_lets_an_owner_manage_a_team_and_its_grants(people: People) -> None:
    alice = signed_in(people.alice)
    alice.post("/orgs/acme/teams/devs/", {"form": "member", "member-username": "charlie"})
    assert TeamMember.objects.filter(team=people.devs, user=people.charlie).exists()
    response = alice.post(
        "/orgs/acme/teams/devs/",
        {"form": "grant", "grant-repository": "acme/public", "grant-level": str(Level.WRITE)},
    )
    assert response.status_code == 302
    assert RepositoryGrant.objects.get(team=people.devs, repository=people.public).level == 2
    html = page(alice, "/orgs/acme/teams/devs/")
    assert "acme/public" in html and "charlie" in html
    alice.post(
        "/orgs/acme/teams/devs/",
        {"form": "grant", "grant-repository": "acme/public", "grant-level": "0"},
    )
    assert not RepositoryGrant.objects.filter(team=people.devs, repository=people.public).exists()


def test_it_refuses_grants_on_repositories_the_manager_does_not_administer(
    people: People,
) -> None:
    actions.team_member_set(team=people.devs, user=people.bob, role="maintainer")
    response = signed_in(people.bob).post(
        "/orgs/acme/teams/devs/",
        {"form": "grant", "grant-repository": "alice/own", "grant-level": str(Level.ADMIN)},
    )
    assert response.status_code == 200
    assert "You administer no repository of that name" in response.content.decode()
    assert not RepositoryGrant.objects.filter(repository=people.alice_own).exists()


def test_it_lists_a_teams_grants_only_on_repositories_the_viewer_sees(people: People) -> None:
    hidden = make_repository("acme/hidden")
    RepositoryGrant.objects.create(repository=hidden, team=people.devs, level=Level.READ)
    actions.membership_set(organisation=people.acme, user=people.charlie, role="member")
    html = page(signed_in(people.charlie), "/orgs/acme/teams/devs/")
    assert "acme/hidden" not in html and "acme/private" not in html


# --- personal access tokens -----------------------------------------------------------------


def test_it_creates_a_token_and_shows_its_secret_once(people: People) -> None:
    alice = signed_in(people.alice)
    response = alice.post(
        "/settings/tokens/",
        {"name": "laptop", "repository": "acme/*", "actions": ["pull", "push"], "expires": "30"},
    )
    html = response.content.decode()
    token = AccessToken.objects.get(user=people.alice, name="laptop")
    assert token.scopes == [{"repository": "acme/*", "actions": ["pull", "push"]}]
    assert token.expires_at is not None
    assert "hubt_" in html and response["Cache-Control"] == "no-store"
    again = page(alice, "/settings/tokens/")
    assert (
        "laptop" in again
        and token.prefix in again
        and "hubt_" not in again.replace(token.prefix, "")
    )


def test_it_refuses_a_bad_scope_with_a_message(people: People) -> None:
    response = signed_in(people.alice).post(
        "/settings/tokens/", {"name": "x", "repository": "ACME/$", "actions": ["pull"]}
    )
    html = response.content.decode()
    assert "repository pattern" in html and "This field is required" in html  # no expiry
    assert not AccessToken.objects.filter(user=people.alice).exists()


def test_it_revokes_a_token_after_confirming(people: People) -> None:
    token, _ = token_create(
        name="ci", user=people.alice, scopes=[{"repository": "**", "actions": ["pull"]}]
    )
    alice = signed_in(people.alice)
    assert "Revoke the token" in page(alice, f"/settings/tokens/{token.pk}/revoke/")
    assert alice.post(f"/settings/tokens/{token.pk}/revoke/").status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    charlie = signed_in(people.charlie)
    assert charlie.post(f"/settings/tokens/{token.pk}/revoke/").status_code == 404


def test_it_sends_anonymous_visitors_to_sign_in(people: People) -> None:
    for url in ("/settings/", "/settings/tokens/", "/audit/", "/orgs/new/"):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- audit log ------------------------------------------------------------------------------


def test_it_shows_owners_their_organisations_events(people: People) -> None:
    html = page(signed_in(people.alice), "/audit/")
    assert "team.create" in html and "grant.set" in html


def test_it_shows_charlie_none_of_acmes_events(people: People) -> None:
    push_image(pusher("alice"), "alice/own", "1.0")
    html = page(signed_in(people.charlie), "/audit/")
    assert "acme" not in html and "alice/own" not in html and "alice" not in html


def test_it_filters_the_audit_log(people: People) -> None:
    push_image(pusher("alice"), "acme/private", "1.0")
    html = page(signed_in(people.alice), "/audit/?action=manifest.push&outcome=success")
    assert "manifest.push" in html and "team.create" not in html
    bad = signed_in(people.alice).get("/audit/?since=yesterday")
    assert bad.status_code == 400 and "ISO 8601" in bad.content.decode()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ocsf"])
def test_it_exports_what_the_viewer_may_read(people: People, fmt: str) -> None:
    seal_pending()
    response = signed_in(people.alice).get(f"/audit/export?format={fmt}&action=team.create")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert "team.create" in text and "grant.set" not in text
    charlie = signed_in(people.charlie).get(f"/audit/export?format={fmt}")
    assert "acme" not in b"".join(charlie.streaming_content).decode()  # type: ignore[attr-defined]


def test_it_links_every_export_format(people: People) -> None:
    html = page(signed_in(people.alice), "/audit/?actor=alice")
    for fmt in ("csv", "jsonl", "ocsf"):
        assert f"/audit/export?format={fmt}&amp;actor=alice" in html


# --- settings of repositories and organisations ---------------------------------------------


def test_it_lets_an_admin_change_a_repositorys_description_and_visibility(
    people: People,
) -> None:
    alice = signed_in(people.alice)
    html = page(alice, "/r/acme/private/-/settings/")
    assert "team" in html and "devs" in html and "acme+ci" in html
    response = alice.post(
        "/r/acme/private/-/settings/", {"description": "*Hello*", "visibility": "public"}
    )
    assert response.status_code == 302
    people.private.refresh_from_db()
    assert people.private.visibility == "public"
    assert "<em>Hello</em>" in page(Client(), "/r/acme/private/")
    assert Event.objects.filter(action="repository.update", actor_name="alice").exists()


@pytest.mark.parametrize(("who", "status"), [("bob", 403), ("charlie", 404), ("anonymous", 404)])
def test_it_keeps_repository_settings_from_non_admins(
    people: People, who: str, status: int
) -> None:
    client = viewer(people, who)
    page(client, "/r/acme/private/-/settings/", status)
    response = client.post("/r/acme/private/-/settings/", {"visibility": "public"})
    assert response.status_code == status
    people.private.refresh_from_db()
    assert people.private.visibility == "private"


def test_it_lets_an_owner_edit_the_organisation(people: People) -> None:
    signed_in(people.alice).post(
        "/orgs/acme/", {"form": "settings", "display_name": "ACME Corp", "description": "x"}
    )
    people.acme.refresh_from_db()
    assert people.acme.display_name == "ACME Corp"
    signed_in(people.bob).post("/orgs/acme/", {"form": "settings", "display_name": "Bob's"})
    people.acme.refresh_from_db()
    assert people.acme.display_name == "ACME Corp"


def test_it_renders_a_page_of_many_tags_in_a_fixed_number_of_queries(
    people: People, settings: Any, django_assert_max_num_queries: Any
) -> None:
    from tests.factories import TagFactory

    settings.HUB_WEB_PAGE_SIZE = 50
    TagFactory.create_batch(120, repository=people.public)
    client = signed_in(people.alice)
    client.get("/r/acme/public/")
    with django_assert_max_num_queries(20):
        html = page(client, "/r/acme/public/?sort=name&page=2")
    assert "Page 2 of 3" in html and html.count("/-/manifests/") == 50


# --- robots ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("who", "status"), [("bob", 403), ("charlie", 404), ("anonymous", 404)])
def test_it_keeps_robots_to_owners(people: People, who: str, status: int) -> None:
    client = viewer(people, who)
    for url in ("/orgs/acme/robots/new/", "/orgs/acme/robots/ci/", "/orgs/acme/robots/ci/disable/"):
        page(client, url, status)
    assert client.post("/orgs/acme/robots/ci/disable/").status_code == status
    people.robot.refresh_from_db()
    assert people.robot.disabled_at is None


def test_it_lets_an_owner_create_a_robot_and_give_it_a_token(people: People) -> None:
    alice = signed_in(people.alice)
    response = alice.post("/orgs/acme/robots/new/", {"name": "deploy", "may_create": "on"})
    assert response["Location"] == "/orgs/acme/robots/deploy/"
    response = alice.post("/orgs/acme/robots/deploy/", {"name": "pipeline", "expires": "30"})
    html = response.content.decode()
    assert "hubt_" in html and response["Cache-Control"] == "no-store"
    token = AccessToken.objects.get(robot__name="deploy")
    assert token.expires_at is not None and token.scopes == []
    taken = alice.post("/orgs/acme/robots/new/", {"name": "deploy"})
    assert "already has a robot" in taken.content.decode()


def test_it_revokes_a_robot_token_and_disables_the_robot_after_confirming(
    people: People,
) -> None:
    alice = signed_in(people.alice)
    token = AccessToken.objects.get(robot=people.robot)
    url = f"/orgs/acme/robots/ci/tokens/{token.pk}/revoke/"
    assert "Revoke the token" in page(alice, url)
    assert alice.post(url).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "Disable the robot" in page(alice, "/orgs/acme/robots/ci/disable/")
    alice.post("/orgs/acme/robots/ci/disable/")
    people.robot.refresh_from_db()
    assert people.robot.disabled_at is not None


def test_it_lets_an_owner_add_and_remove_default_grants(people: People) -> None:
    from teams.models import DefaultGrant

    alice = signed_in(people.alice)
    alice.post(
        "/orgs/acme/",
        {
            "form": "default-grant",
            "default-kind": "team",
            "default-name": "devs",
            "default-level": "1",
        },
    )
    grant = DefaultGrant.objects.get(organisation=people.acme)
    assert grant.team == people.devs and grant.level == Level.READ
    alice.post(
        "/orgs/acme/",
        {
            "form": "default-grant",
            "default-kind": "team",
            "default-name": "nope",
            "default-level": "1",
        },
    )
    assert DefaultGrant.objects.count() == 1
    assert (
        signed_in(people.bob)
        .post("/orgs/acme/", {"form": "remove-default-grant", "id": grant.pk})
        .status_code
        == 403
    )
    asked = alice.post("/orgs/acme/", {"form": "remove-default-grant", "id": grant.pk})
    assert "Yes, remove this default grant" in asked.content.decode()
    assert DefaultGrant.objects.exists()
    alice.post("/orgs/acme/", {"form": "remove-default-grant", "id": grant.pk, "confirmed": "yes"})
    assert not DefaultGrant.objects.exists()


@pytest.mark.parametrize(
    "url", ["/accounts/email/", "/accounts/password/change/", "/accounts/2fa/"]
)
def test_it_shows_allauths_settings_pages_with_hubs_settings_menu(people: People, url: str) -> None:
    html = page(signed_in(people.alice), url)
    assert "Skip to content" in html and 'aria-label="Settings"' in html
    assert "/settings/tokens/" in html
