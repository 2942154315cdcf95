"""Authentication and authorisation on /v2/ and the token endpoint, and the attacks on them."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.test import Client

from accounts import jwt_tokens
from accounts.actions import token_create
from registry.models import Repository, RepositoryBlob, Upload
from tests.conftest import basic_auth
from tests.helpers import assert_error, body, digest_of, push_image, start_upload
from tests.people import PASSWORD, People

pytestmark = pytest.mark.django_db


def as_user(who: str, password: str = PASSWORD) -> Client:
    return Client(HTTP_AUTHORIZATION=basic_auth(who, password))


def bearer(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def token_for(client: Client, *scopes: str) -> dict[str, Any]:
    response = client.get("/auth/token", {"service": "hub", "scope": list(scopes)})
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def granted(token: str) -> dict[str, list[str]]:
    claims = jwt_tokens.verify(token)
    return {a["name"]: a["actions"] for a in claims["access"] if a["type"] == "repository"}


@pytest.fixture
def pushed(people: People) -> dict[str, str]:
    """alice pushes an image to acme/private and one to acme/public."""
    alice = as_user("alice")
    _, private_digest = push_image(alice, "acme/private", "v1", layers=(b"private layer",))
    _, public_digest = push_image(alice, "acme/public", "v1", layers=(b"public layer",))
    return {"private": private_digest, "public": public_digest}


# --- challenges and the token endpoint -------------------------------------------------------


def test_it_challenges_anonymous_callers(people: People) -> None:
    response = Client().get("/v2/")
    assert_error(response, 401, "UNAUTHORIZED")
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="http://testserver/auth/token"')
    assert 'service="hub"' in challenge


def test_it_challenges_with_the_scope_needed(people: People, pushed: dict[str, str]) -> None:
    response = Client().get("/v2/acme/private/manifests/v1")
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'scope="repository:acme/private:pull"' in response["WWW-Authenticate"]


def test_it_lets_anonymous_pull_public_repositories(people: People, pushed: dict[str, str]) -> None:
    token = token_for(Client(), "repository:acme/public:pull,push", "repository:acme/private:pull")
    assert granted(token["token"]) == {"acme/public": ["pull"], "acme/private": []}
    response = bearer(token["token"]).get("/v2/acme/public/manifests/v1")
    assert response.status_code == 200
    assert response["Docker-Content-Digest"] == pushed["public"]


@pytest.mark.parametrize(
    ("who", "scope", "expected"),
    [
        ("alice", "repository:acme/private:pull,push,delete", ["delete", "pull", "push"]),
        ("bob", "repository:acme/private:pull,push,delete", ["pull", "push"]),
        ("bob", "repository:acme/private:*", ["pull", "push"]),
        ("charlie", "repository:acme/private:pull", []),
        ("charlie", "repository:acme/public:pull,push", ["pull"]),  # no escalation
        ("charlie", "repository:alice/own:pull", []),
        ("charlie", "repository:charlie/new:pull,push", ["pull", "push"]),  # own namespace
        ("bob", "repository:alice/new:pull,push", []),
    ],
)
def test_it_grants_only_the_intersection_of_asked_and_allowed(
    people: People, who: str, scope: str, expected: list[str]
) -> None:
    token = token_for(as_user(who), scope)
    assert list(granted(token["token"]).values()) == [expected]


def test_it_refuses_wrong_credentials_at_the_token_endpoint(people: People) -> None:
    response = as_user("bob", "wrong").get("/auth/token", {"service": "hub"})
    assert response.status_code == 401
    assert json.loads(response.content)["errors"][0]["code"] == "UNAUTHORIZED"


def test_it_rate_limits_failed_sign_ins_per_account(people: People, settings: Any) -> None:
    settings.HUB_AUTH_MAX_FAILURES_PER_ACCOUNT = 3
    for _ in range(3):
        assert as_user("bob", "wrong").get("/auth/token").status_code == 401
    # Even the right password is refused while the account is locked out.
    response = as_user("bob").get("/auth/token")
    assert response.status_code == 429
    assert_error(as_user("bob", "wrong").get("/v2/"), 429, "TOOMANYREQUESTS")


def test_it_issues_and_honours_refresh_tokens(people: People) -> None:
    response = Client().post(
        "/auth/token",
        {
            "grant_type": "password",
            "username": "bob",
            "password": PASSWORD,
            "service": "hub",
            "client_id": "docker",
            "access_type": "offline",
            "scope": "repository:acme/private:pull",
        },
    )
    assert response.status_code == 200, response.content
    refresh = json.loads(response.content)["refresh_token"]
    response = Client().post(
        "/auth/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": "hub",
            "scope": "repository:acme/private:pull,push",
        },
    )
    assert response.status_code == 200, response.content
    assert granted(json.loads(response.content)["token"]) == {"acme/private": ["pull", "push"]}
    bad = Client().post(
        "/auth/token",
        {"grant_type": "refresh_token", "refresh_token": "hubt_nope", "service": "hub"},
    )
    assert bad.status_code == 401


# --- the registry with each kind of credential ----------------------------------------------


def test_it_takes_basic_credentials_on_v2(people: People, pushed: dict[str, str]) -> None:
    assert as_user("bob").get("/v2/").status_code == 200
    assert as_user("bob").get("/v2/acme/private/manifests/v1").status_code == 200
    assert_error(as_user("bob", "wrong").get("/v2/"), 401, "UNAUTHORIZED")


def test_it_denies_a_reader_what_it_may_not_do(people: People, pushed: dict[str, str]) -> None:
    assert_error(
        as_user("bob").delete(f"/v2/acme/private/manifests/{pushed['private']}"), 403, "DENIED"
    )
    assert_error(as_user("charlie").post("/v2/acme/public/blobs/uploads/"), 403, "DENIED")


def test_it_hides_private_repositories_exactly_like_missing_ones(
    people: People, pushed: dict[str, str]
) -> None:
    charlie = as_user("charlie")
    for path in ("manifests/v1", "tags/list", f"blobs/{pushed['private']}"):
        private = charlie.get(f"/v2/acme/private/{path}")
        missing = charlie.get(f"/v2/acme/missing/{path}")
        assert private.status_code == missing.status_code == 404, path
        private_error = json.loads(body(private))["errors"][0]
        missing_error = json.loads(body(missing))["errors"][0]
        assert private_error["code"] == missing_error["code"]
    assert charlie.post("/v2/acme/private/blobs/uploads/").status_code == 403
    assert charlie.post("/v2/acme/missing/blobs/uploads/").status_code == 403
    catalog = json.loads(charlie.get("/v2/_catalog").content)["repositories"]
    assert catalog == ["acme/public"]


def test_it_creates_a_repository_on_push_in_ones_own_namespace(people: People) -> None:
    push_image(as_user("charlie"), "charlie/app", "v1")
    repo = Repository.objects.get(name="charlie/app")
    assert repo.namespace is not None and repo.namespace.name == "charlie"
    assert repo.visibility == "private"
    assert as_user("bob").get("/v2/charlie/app/manifests/v1").status_code == 404


def test_it_takes_personal_tokens_within_their_scopes(
    people: People, pushed: dict[str, str]
) -> None:
    _, secret = token_create(
        name="ci", user=people.bob, scopes=[{"repository": "acme/*", "actions": ["pull"]}]
    )
    client = Client(HTTP_AUTHORIZATION=basic_auth("bob", secret))
    assert client.get("/v2/acme/private/manifests/v1").status_code == 200
    assert_error(client.post("/v2/acme/private/blobs/uploads/"), 403, "DENIED")


def test_it_takes_robot_tokens(people: People, pushed: dict[str, str]) -> None:
    robot = Client(HTTP_AUTHORIZATION=basic_auth("acme+ci", people.robot_secret))
    push_image(robot, "acme/private", "from-ci", layers=(b"ci layer",))
    assert robot.get("/v2/acme/private/manifests/from-ci").status_code == 200
    assert robot.get("/v2/alice/own/tags/list").status_code == 404
    wrong_org = Client(HTTP_AUTHORIZATION=basic_auth("other+ci", people.robot_secret))
    assert wrong_org.get("/v2/").status_code == 401


def test_it_refuses_revoked_tokens(people: People) -> None:
    from accounts.actions import token_revoke

    token, secret = token_create(
        name="t", user=people.bob, scopes=[{"repository": "**", "actions": ["pull"]}]
    )
    client = Client(HTTP_AUTHORIZATION=basic_auth("bob", secret))
    assert client.get("/v2/").status_code == 200
    token_revoke(token=token)
    assert client.get("/v2/").status_code == 401


# --- attacks ---------------------------------------------------------------------------------


def _forge(claims: dict[str, Any], key: Any, algorithm: str, **headers: Any) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers or None)


def _claims(**override: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "hub",
        "sub": "charlie",
        "aud": "hub",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "access": [{"type": "repository", "name": "acme/private", "actions": ["pull", "push"]}],
        "hub": {"key": "user:999"},
    }
    claims.update(override)
    return claims


def test_it_refuses_forged_tokens(people: People, pushed: dict[str, str]) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = _forge(_claims(), other_key, "ES256")
    assert_error(bearer(forged).get("/v2/acme/private/manifests/v1"), 401, "UNAUTHORIZED")


def test_it_refuses_alg_none_tokens(people: People, pushed: dict[str, str]) -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=").decode()
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        assert_error(bearer(token).get("/v2/acme/private/manifests/v1"), 401, "UNAUTHORIZED")


def test_it_refuses_hmac_tokens_keyed_with_the_public_key(people: People) -> None:
    from cryptography.hazmat.primitives import serialization

    public_pem = jwt_tokens.signing_keys().public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    import hashlib
    import hmac

    payload = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=").decode()
    signature = hmac.new(public_pem, f"{token}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{token}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    assert_error(bearer(forged).get("/v2/acme/private/tags/list"), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    "override",
    [{"exp": int(time.time()) - 120}, {"aud": "someone-else"}, {"iss": "evil"}],
    ids=["expired", "wrong-audience", "wrong-issuer"],
)
def test_it_refuses_tokens_with_bad_claims(
    people: People, pushed: dict[str, str], override: dict[str, Any]
) -> None:
    token = _forge(_claims(**override), jwt_tokens.signing_keys().private, "ES256")
    assert_error(bearer(token).get("/v2/acme/private/tags/list"), 401, "UNAUTHORIZED")


def test_it_refuses_reading_another_repositorys_blob_by_digest(
    people: People, pushed: dict[str, str]
) -> None:
    layer = digest_of(b"private layer")
    charlie = as_user("charlie")
    push_image(charlie, "charlie/app", "v1")
    assert_error(charlie.get(f"/v2/charlie/app/blobs/{layer}"), 404, "BLOB_UNKNOWN")
    assert_error(charlie.get(f"/v2/acme/private/blobs/{layer}"), 404, "BLOB_UNKNOWN")


def test_it_refuses_mounting_from_a_repository_one_cannot_read(
    people: People, pushed: dict[str, str]
) -> None:
    layer = digest_of(b"private layer")
    response = as_user("charlie").post(
        f"/v2/charlie/app/blobs/uploads/?mount={layer}&from=acme/private"
    )
    assert response.status_code == 202  # an ordinary session instead, as the spec asks
    assert not RepositoryBlob.objects.filter(
        repository__name="charlie/app", blob__digest=layer
    ).exists()
    assert_error(as_user("charlie").get(f"/v2/charlie/app/blobs/{layer}"), 404, "BLOB_UNKNOWN")


def test_it_refuses_continuing_someone_elses_upload(people: People) -> None:
    location = start_upload(as_user("bob"), "acme/private")
    robot = Client(HTTP_AUTHORIZATION=basic_auth("acme+ci", people.robot_secret))
    response = robot.patch(location, b"evil", content_type="application/octet-stream")
    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(robot.put(location + "?digest=" + digest_of(b"")), 404, "BLOB_UPLOAD_UNKNOWN")
    upload = Upload.objects.get()
    assert upload.size == 0  # nothing was written
    assert as_user("bob").get(location).status_code == 204


def test_it_refuses_bearer_tokens_without_the_scope(people: People, pushed: dict[str, str]) -> None:
    token = token_for(as_user("bob"), "repository:acme/private:pull")["token"]
    client = bearer(token)
    assert client.get("/v2/acme/private/manifests/v1").status_code == 200
    # bob may push, but this token holds only pull: asked to get a token with push.
    response = client.post("/v2/acme/private/blobs/uploads/")
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'scope="repository:acme/private:pull,push"' in response["WWW-Authenticate"]
    # Holds nothing for this repository: asked to authenticate for it.
    response = client.get("/v2/acme/public/manifests/v1")
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'scope="repository:acme/public:pull"' in response["WWW-Authenticate"]


def test_it_denies_a_bearer_reader_what_its_holder_may_not_do(
    people: People, pushed: dict[str, str]
) -> None:
    token = token_for(as_user("charlie"), "repository:acme/public:pull,push")["token"]
    assert granted(token) == {"acme/public": ["pull"]}
    assert_error(bearer(token).post("/v2/acme/public/blobs/uploads/"), 403, "DENIED")


def test_it_honours_every_scope_a_token_names_for_one_repository(
    people: People, pushed: dict[str, str]
) -> None:
    scopes = ("repository:acme/private:pull", "repository:acme/private:delete")
    client = bearer(token_for(as_user("alice"), *scopes)["token"])
    assert client.get("/v2/acme/private/manifests/v1").status_code == 200
    assert client.delete(f"/v2/acme/private/manifests/{pushed['private']}").status_code == 202


def catalog_of(client: Client) -> list[str]:
    response = client.get("/v2/_catalog")
    assert response.status_code == 200, body(response)
    return list(json.loads(response.content)["repositories"])


@pytest.mark.parametrize("who", ["alice", "bob", "charlie"])
def test_it_lists_the_catalog_to_a_bearer_token_as_to_its_holder(people: People, who: str) -> None:
    token = token_for(as_user(who), "registry:catalog:*")["token"]
    assert catalog_of(bearer(token)) == catalog_of(as_user(who))


def test_it_asks_a_bearer_token_without_the_catalog_scope_to_get_it(people: People) -> None:
    token = token_for(as_user("bob"), "repository:acme/private:pull")["token"]
    response = bearer(token).get("/v2/_catalog")
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'scope="registry:catalog:*"' in response["WWW-Authenticate"]
    anonymous = token_for(Client(), "registry:catalog:*")["token"]
    assert catalog_of(bearer(anonymous)) == ["acme/public"]


def test_it_answers_any_path_with_a_spec_error(people: People) -> None:
    assert_error(as_user("bob").get("/v2/\n/tags/list"), 404)


def test_it_forgets_a_remembered_password_when_the_user_changes(people: People) -> None:
    client = as_user("bob")
    assert client.get("/v2/").status_code == 200  # checked in full, then remembered
    people.bob.set_password("a-new-password-1")
    people.bob.save()
    assert client.get("/v2/").status_code == 401
    assert as_user("bob", "a-new-password-1").get("/v2/").status_code == 200
    people.bob.is_active = False
    people.bob.save()
    assert as_user("bob", "a-new-password-1").get("/v2/").status_code == 401
