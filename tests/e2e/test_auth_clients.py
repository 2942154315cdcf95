"""Signing in to Hub with the real clients: docker (SDK and CLI), podman and skopeo.

One node for the module, with these people (tests/support/accounts.py): alice owns the
organisation `acme` (acme/private, acme/public, acme/readonly); bob is in acme's team
`devs`, which may write acme/private and only read acme/readonly, and has a personal
access token (pull, push on acme/**) and a pull-only one; charlie has nothing; the robot
`acme+ci` may write acme/private. Each client signs in with a password, a personal
access token and a robot token, pushes, and pulls back what it pushed; refusals leave
nothing behind and do not tell a private repository from a missing one.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.clients import need_tool, run
from tests.e2e.images import make_image, read_layout, write_image_layout
from tests.support.accounts import (
    WORKTREE_ENV,
    Accounts,
    create_people,
    empty_authfile,
    hub_shell_json,
    repository_exists,
    tags_of,
)
from tests.support.databases import fresh_database
from tests.support.servers import ADMIN_CREDS, HubProcess, start_hub

pytestmark = pytest.mark.e2e

Run = Callable[..., subprocess.CompletedProcess[str]]
SIGN_INS = ["password", "token", "robot"]
# Who signs in for each kind of credential (all of them may write acme/private).
WHO = {"password": "bob", "token": "bob-token", "robot": "robot"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    data_dir = tmp_path_factory.mktemp("hub-auth-e2e")
    with fresh_database(data_dir) as db_env:
        process = start_hub(data_dir, env={**db_env, **WORKTREE_ENV, "HUB_ACCESS_LOG": "-"})
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture(scope="module")
def people(node: HubProcess) -> Accounts:
    return create_people(node)


def _server_errors(node: HubProcess) -> list[str]:
    return [
        line for line in node.log().splitlines() if re.search(r'" 5\d\d |Traceback|\[ERROR\]', line)
    ]


@pytest.fixture(autouse=True)
def _node_answers_no_5xx(node: HubProcess) -> Iterator[None]:
    """Whatever a client made of it, Hub must not have answered 5xx or logged a traceback."""
    before = len(_server_errors(node))
    yield
    errors = _server_errors(node)[before:]
    assert not errors, "Hub logged server errors:\n" + "\n".join(errors)


def _access_log(node: HubProcess, pattern: str) -> list[tuple[str, str]]:
    """(request line, status) of the access-log lines whose request line matches."""
    line_re = re.compile(r'"(?P<req>[A-Z]+ \S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')
    found = []
    for line in node.log().splitlines():
        match = line_re.search(line)
        if match and re.search(pattern, match["req"]):
            found.append((match["req"], match["status"]))
    return found


def _admin_get(node: HubProcess, path: str, **kwargs: object) -> requests.Response:
    user, _, password = ADMIN_CREDS.partition(":")
    return requests.get(node.url + path, auth=(user, password), timeout=30, **kwargs)  # type: ignore[arg-type]


def _nonce() -> str:
    return uuid.uuid4().hex[:10]


def _refused(proc: subprocess.CompletedProcess[str]) -> str:
    """The client failed, saying it was refused; its error output (lower-cased)."""
    text = (proc.stderr + proc.stdout).lower()
    assert proc.returncode != 0, text
    assert "denied" in text or "unauthorized" in text, text
    return text


# --- the clients ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def skopeo_exe() -> str:
    return need_tool("skopeo")


@pytest.fixture
def skopeo(skopeo_exe: str, tmp_path: Path) -> Run:
    """skopeo with an empty auth file: only --creds / --src-creds / --dest-creds sign in."""
    authfile = empty_authfile(tmp_path / "skopeo-auth")

    def call(command: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            [skopeo_exe, "--insecure-policy", command, "--authfile", str(authfile), *args],
            check=check,
        )

    return call


def _oci_layout(tmp_path: Path, tag: str = "v1") -> tuple[Path, str]:
    """A fresh OCI layout (unique bytes) and its manifest digest."""
    image = make_image(layer_sizes=(4096, 2048))
    layout = write_image_layout(tmp_path / f"layout-{_nonce()}", image, tag)
    return layout, image.digest


def _layout_digest(layout: Path) -> str:
    manifests, _ = read_layout(layout)
    assert len(manifests) == 1, manifests
    return str(manifests[0]["digest"])


def _podman_image(podman: Run, tmp_path: Path) -> str:
    """A fresh `FROM scratch` busybox image in podman's storage; its local name."""
    from tests.e2e.conftest import busybox_context

    nonce = _nonce()
    context = busybox_context(tmp_path / f"ctx-{nonce}", nonce)
    local = f"localhost/e2e-auth-{nonce}:latest"
    podman(
        "build",
        "--isolation=chroot",
        "-f",
        str(context / "Containerfile"),
        "-t",
        local,
        str(context),
    )
    return local


def _docker_image(client: object, tmp_path: Path, ref: str) -> str:
    """A fresh busybox image built by dockerd and tagged `ref`; its ID."""
    from tests.e2e.conftest import busybox_context

    nonce = _nonce()
    context = busybox_context(tmp_path / f"ctx-{nonce}", nonce)
    image, _ = client.images.build(  # type: ignore[attr-defined]
        path=str(context), dockerfile="Containerfile", tag=ref, rm=True, network_mode="none"
    )
    return str(image.id)


def _docker_push(client: object, repository: str, tag: str) -> list[dict]:
    return list(client.images.push(repository, tag=tag, stream=True, decode=True))  # type: ignore[attr-defined]


def _push_errors(events: list[dict]) -> list[str]:
    return [
        str(e.get("error") or e.get("errorDetail"))
        for e in events
        if "error" in e or "errorDetail" in e
    ]


# --- 1. docker (the SDK, through dockerd) -----------------------------------------------------


@pytest.mark.parametrize("sign_in", SIGN_INS)
def test_docker_login_push_and_pull(
    node: HubProcess, people: Accounts, dockerd, tmp_path: Path, sign_in: str
) -> None:
    client = dockerd.client
    username, secret = people.creds(WHO[sign_in])
    answer = client.login(username=username, password=secret, registry=node.host, reauth=True)
    assert answer["Status"] == "Login Succeeded"

    tag = f"docker-{sign_in}-{_nonce()}"
    repository = f"{node.host}/acme/private"
    image_id = _docker_image(client, tmp_path, f"{repository}:{tag}")
    events = _docker_push(client, repository, tag)
    assert not _push_errors(events), events
    digest = next(e["aux"]["Digest"] for e in events if "Digest" in e.get("aux", {}))
    assert tag in tags_of(node, "acme/private")
    assert (
        _admin_get(node, f"/v2/acme/private/manifests/{tag}").headers["Docker-Content-Digest"]
        == digest
    )

    # Gone from dockerd, then pulled back: the same image.
    client.images.remove(image_id, force=True)
    pulled = client.images.pull(repository, tag=tag)
    assert pulled.id == image_id
    client.images.remove(image_id, force=True)


def test_docker_login_refuses_a_wrong_password(node: HubProcess, people: Accounts, dockerd) -> None:
    import docker

    with pytest.raises(docker.errors.APIError) as refused:
        dockerd.client.login(
            username="bob", password="not bob's password", registry=node.host, reauth=True
        )
    assert "unauthorized" in str(refused.value).lower() or "401" in str(refused.value)


# --- 2. podman and skopeo ------------------------------------------------------------------


@pytest.mark.parametrize("sign_in", SIGN_INS)
def test_podman_login_push_and_pull(
    node: HubProcess, people: Accounts, podman: Run, tmp_path: Path, sign_in: str
) -> None:
    username, secret = people.creds(WHO[sign_in])
    authfile = tmp_path / "podman-auth" / "auth.json"
    authfile.parent.mkdir()
    podman(
        "login",
        "--authfile",
        str(authfile),
        "--tls-verify=false",
        "-u",
        username,
        "-p",
        secret,
        node.host,
    )
    stored = json.loads(authfile.read_text())["auths"][node.host]["auth"]
    assert base64.b64decode(stored).decode() == f"{username}:{secret}"

    local = _podman_image(podman, tmp_path)
    image_id = podman("image", "inspect", "--format", "{{.Id}}", local).stdout.strip()
    tag = f"podman-{sign_in}-{_nonce()}"
    remote = f"{node.host}/acme/private:{tag}"
    podman("push", "--authfile", str(authfile), "--tls-verify=false", local, remote)
    assert tag in tags_of(node, "acme/private")

    podman("rmi", "--force", local)
    podman("pull", "--authfile", str(authfile), "--tls-verify=false", remote)
    assert podman("image", "inspect", "--format", "{{.Id}}", remote).stdout.strip() == image_id
    assert ("GET /v2/acme/private/manifests/" + tag, "200") in _access_log(
        node, rf"^GET /v2/acme/private/manifests/{tag}$"
    )
    podman("rmi", "--force", remote)


@pytest.mark.parametrize("sign_in", SIGN_INS)
def test_skopeo_copy_with_creds(
    node: HubProcess, people: Accounts, skopeo: Run, tmp_path: Path, sign_in: str
) -> None:
    creds = ":".join(people.creds(WHO[sign_in]))
    layout, digest = _oci_layout(tmp_path)
    tag = f"skopeo-{sign_in}-{_nonce()}"
    remote = f"docker://{node.host}/acme/private:{tag}"
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:v1", remote)
    assert (
        _admin_get(node, f"/v2/acme/private/manifests/{tag}").headers["Docker-Content-Digest"]
        == digest
    )

    back = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, remote, f"oci:{back}:v1")
    assert _layout_digest(back) == digest


# --- 3. refusals ---------------------------------------------------------------------------


def test_docker_push_without_write_is_denied(
    node: HubProcess, people: Accounts, dockerd, tmp_path: Path
) -> None:
    """charlie may not even see acme/private; bob may only read acme/readonly."""
    client = dockerd.client
    for who, repo in (("charlie", "acme/private"), ("bob", "acme/readonly")):
        client.login(*people.creds(who), registry=node.host, reauth=True)
        tag = f"refused-{who}-{_nonce()}"
        repository = f"{node.host}/{repo}"
        image_id = _docker_image(client, tmp_path, f"{repository}:{tag}")
        errors = " ".join(_push_errors(_docker_push(client, repository, tag))).lower()
        assert "denied" in errors or "unauthorized" in errors, (who, errors)
        client.images.remove(image_id, force=True)
        assert tag not in tags_of(node, repo)
        assert _admin_get(node, f"/v2/{repo}/manifests/{tag}").status_code == 404


def test_podman_push_without_write_is_denied(
    node: HubProcess, people: Accounts, podman: Run, tmp_path: Path
) -> None:
    local = _podman_image(podman, tmp_path)
    for who, repo in (
        ("bob", "acme/readonly"),
        ("charlie", "acme/private"),
        ("charlie", "acme/new"),
    ):
        username, secret = people.creds(who)
        tag = f"refused-{who}-{_nonce()}"
        proc = podman(
            "push",
            "--tls-verify=false",
            "--creds",
            f"{username}:{secret}",
            local,
            f"{node.host}/{repo}:{tag}",
            check=False,
        )
        _refused(proc)
        assert tag not in tags_of(node, repo)
    assert not repository_exists(node, "acme/new")
    podman("rmi", "--force", local)


def test_skopeo_push_with_a_pull_only_token_is_denied(
    node: HubProcess, people: Accounts, skopeo: Run, tmp_path: Path
) -> None:
    layout, _ = _oci_layout(tmp_path)
    creds = ":".join(people.creds("bob-pull-token"))
    tag = f"refused-pull-token-{_nonce()}"
    proc = skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        f"oci:{layout}:v1",
        f"docker://{node.host}/acme/private:{tag}",
        check=False,
    )
    _refused(proc)
    assert tag not in tags_of(node, "acme/private")


@pytest.fixture(scope="module")
def private_tag(node: HubProcess, people: Accounts, skopeo_exe: str, tmp_path_factory) -> str:
    """alice pushes one image to acme/private, tagged `shown-to-members`."""
    tmp = tmp_path_factory.mktemp("private-tag")
    layout, _ = _oci_layout(tmp)
    run(
        [
            skopeo_exe,
            "--insecure-policy",
            "copy",
            "--authfile",
            str(empty_authfile(tmp / "a")),
            "--dest-tls-verify=false",
            "--dest-creds",
            ":".join(people.creds("alice")),
            f"oci:{layout}:v1",
            f"docker://{node.host}/acme/private:shown-to-members",
        ]
    )
    return "shown-to-members"


def test_a_private_repository_looks_missing_to_outsiders(
    node: HubProcess, people: Accounts, skopeo: Run, dockerd, private_tag: str, tmp_path: Path
) -> None:
    """charlie's pull of acme/private fails exactly as one of a repository that doesn't exist."""
    creds = ":".join(people.creds("charlie"))
    secret_name, missing = "acme/private", "acme/nothing-here"

    def skopeo_pull(name: str) -> str:
        proc = skopeo(
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            creds,
            f"docker://{node.host}/{name}:{private_tag}",
            f"oci:{tmp_path / _nonce()}:v1",
            check=False,
        )
        text = re.sub(r'time="[^"]*"', "", _refused(proc))
        return text.replace(name, "NAME")

    assert skopeo_pull(secret_name) == skopeo_pull(missing)

    import docker

    client = dockerd.client
    client.login(*people.creds("charlie"), registry=node.host, reauth=True)
    messages = []
    for name in (secret_name, missing):
        with pytest.raises(docker.errors.APIError) as refused:
            client.images.pull(f"{node.host}/{name}", tag=private_tag)
        message = str(refused.value).replace(name.replace("/", "%2F"), "NAME")
        messages.append(message.replace(name, "NAME"))
    assert messages[0] == messages[1]
    assert "unauthorized" in messages[0].lower() or "denied" in messages[0].lower()

    # And the same over plain HTTP: charlie's bearer token holds nothing for either.
    statuses = []
    for name in (secret_name, missing):
        token = requests.get(
            node.url + "/auth/token",
            params={"service": "hub", "scope": f"repository:{name}:pull"},
            auth=people.creds("charlie"),
            timeout=30,
        ).json()["token"]
        answer = requests.get(
            f"{node.url}/v2/{name}/manifests/{private_tag}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        statuses.append((answer.status_code, answer.text.replace(name, "NAME")))
    assert statuses[0] == statuses[1]


def test_anonymous_pulls_public_and_may_not_push(
    node: HubProcess, people: Accounts, skopeo: Run, tmp_path: Path
) -> None:
    layout, digest = _oci_layout(tmp_path)
    public = f"docker://{node.host}/acme/public"
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        ":".join(people.creds("alice")),
        f"oci:{layout}:v1",
        f"{public}:v1",
    )

    back = tmp_path / "back"
    skopeo("copy", "--src-tls-verify=false", f"{public}:v1", f"oci:{back}:v1")
    assert _layout_digest(back) == digest

    # Nobody signed in may push, to a public repository or anywhere else.
    other, _ = _oci_layout(tmp_path)
    for target in (f"{public}:anonymous", f"docker://{node.host}/acme/anonymous:v1"):
        proc = skopeo("copy", "--dest-tls-verify=false", f"oci:{other}:v1", target, check=False)
        _refused(proc)
    assert tags_of(node, "acme/public") == ["v1"]
    assert not repository_exists(node, "acme/anonymous")
    # Nor may anonymous pull a private repository.
    proc = skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{node.host}/acme/private:v1",
        f"oci:{tmp_path / 'nope'}:v1",
        check=False,
    )
    _refused(proc)


# --- 4. refresh tokens ---------------------------------------------------------------------


def test_docker_login_returns_an_identity_token_that_pushes(
    node: HubProcess, people: Accounts, dockerd, tmp_path: Path
) -> None:
    """dockerd asks for an offline token at login; a push with that identity token (no
    password) gets its bearer tokens by the OAuth2 refresh_token grant."""
    client = dockerd.client
    answer = client.login(*people.creds("bob"), registry=node.host, reauth=True)
    identity = answer.get("IdentityToken", "")
    assert identity.startswith("hubt_"), answer
    assert identity != people.password

    refresh_posts = len(_access_log(node, r"^POST /auth/token"))
    tag = f"identity-{_nonce()}"
    repository = f"{node.host}/acme/private"
    image_id = _docker_image(client, tmp_path, f"{repository}:{tag}")
    auth = {"identitytoken": identity, "serveraddress": node.host}
    events = list(
        client.images.push(repository, tag=tag, stream=True, decode=True, auth_config=auth)
    )
    assert not _push_errors(events), events
    posts = _access_log(node, r"^POST /auth/token")[refresh_posts:]
    assert posts and {status for _, status in posts} == {"200"}, posts
    assert tag in tags_of(node, "acme/private")
    client.images.remove(image_id, force=True)


def test_docker_cli_keeps_the_identity_token_not_the_password(
    node: HubProcess, people: Accounts, dockerd, tmp_path: Path
) -> None:
    """`docker login` writes the refresh token to its config file instead of the password,
    and later commands sign in with it."""
    exe = need_tool("docker")
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text("{}")
    base = [exe, "--config", str(config), "--host", f"unix://{dockerd.socket}"]
    proc = subprocess.run(
        [*base, "login", "--username", "bob", "--password-stdin", node.host],
        input=people.password,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((config / "config.json").read_text())["auths"][node.host]
    assert saved.get("identitytoken", "").startswith("hubt_"), saved
    assert people.password not in json.dumps(saved)
    assert base64.b64decode(saved.get("auth", "")).decode() in ("", "bob:")

    tag = f"cli-{_nonce()}"
    ref = f"{node.host}/acme/private:{tag}"
    image_id = _docker_image(dockerd.client, tmp_path, ref)
    run([*base, "push", ref])
    dockerd.client.images.remove(image_id, force=True)
    run([*base, "pull", ref])
    assert dockerd.client.images.get(ref).id == image_id
    dockerd.client.images.remove(image_id, force=True)


def test_oauth2_password_then_refresh_token_grant(node: HubProcess, people: Accounts) -> None:
    """The OAuth2 POST flow by hand: a password grant with offline access gives a refresh
    token, which alone gets bearer tokens that work on /v2/."""
    first = requests.post(
        node.url + "/auth/token",
        data={
            "grant_type": "password",
            "username": "bob",
            "password": people.password,
            "service": "hub",
            "client_id": "e2e",
            "access_type": "offline",
            "scope": "repository:acme/private:pull",
        },
        timeout=30,
    )
    assert first.status_code == 200, first.text
    refresh = first.json()["refresh_token"]
    assert refresh.startswith("hubt_")

    second = requests.post(
        node.url + "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": "hub",
            "client_id": "e2e",
            "scope": "repository:acme/private:pull,push repository:acme/public:pull",
        },
        timeout=30,
    )
    assert second.status_code == 200, second.text
    body = second.json()
    assert "refresh_token" not in body  # the same one is kept
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert requests.get(node.url + "/v2/", headers=bearer, timeout=30).status_code == 200
    tags = requests.get(node.url + "/v2/acme/private/tags/list", headers=bearer, timeout=30)
    assert tags.status_code == 200, tags.text
    assert tags.json()["name"] == "acme/private"

    # The refresh token is a token of bob's, listed (and revocable) like any other.
    names = hub_shell_json(
        node,
        "from accounts.models import AccessToken\n"
        "result = list(AccessToken.objects.filter(user__username='bob')"
        ".values_list('name', flat=True))",
    )
    assert any(str(n).startswith("e2e login from") for n in names), names  # type: ignore[union-attr]

    bad = requests.post(
        node.url + "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": "hubt_nope", "service": "hub"},
        timeout=30,
    )
    assert bad.status_code == 401
