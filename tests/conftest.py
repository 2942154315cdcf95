from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.support.servers import MotoS3, start_moto

pytest_plugins = ["tests.people"]


@pytest.fixture(autouse=True)
def _no_remembered_credentials() -> None:
    """A password remembered by an earlier test (same process) must not skip checks here."""
    from accounts.credentials import forget_verified

    forget_verified()


@pytest.fixture(autouse=True)
def _isolated_storage(settings, tmp_path: Path) -> None:
    """Each test gets its own empty filesystem store."""
    settings.HUB_STORAGE = "filesystem"
    settings.HUB_STORAGE_DIR = tmp_path / "storage"


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """moto's S3 server on loopback, started once for the session."""
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(moto_s3: MotoS3) -> str:
    """A fresh, empty bucket on the moto server."""
    import boto3

    name = f"hub-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=moto_s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=name)
    return name


def pytest_report_header(config: pytest.Config) -> str:
    return f"hub: DATABASE_URL={'set' if os.environ.get('DATABASE_URL') else 'unset (SQLite)'}"


@pytest.fixture(params=["filesystem", pytest.param("s3", marks=pytest.mark.s3)])
def storage_backend(request: pytest.FixtureRequest, settings) -> str:
    """Run a test once on each blob store."""
    if request.param == "s3":
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        settings.HUB_STORAGE = "s3"
        settings.HUB_S3 = {
            "endpoint_url": moto.endpoint,
            "bucket": request.getfixturevalue("s3_bucket"),
            "region": "us-east-1",
            "access_key_id": "test",
            "secret_access_key": "test",
            "prefix": "",
            "redirect": False,
            "redirect_ttl": 600,
            "part_size": 5 * 1024 * 1024,
        }
    return str(request.param)


# The organisation the /v2/ spec tests push to: every repository they use is `library/...`.
# (An organisation owns exactly one namespace, so the tests live in that one.) `nobody/...`
# is a namespace no one owns.
SPEC_ORGANISATION = "library"


@dataclass(frozen=True)
class SpecRobot:
    """The ordinary actor the spec tests run as: the CI robot `library+ci` and its token."""

    username: str
    secret: str

    @property
    def basic(self) -> dict[str, str]:
        """Basic credentials with the token as password (as `docker login` sends them), as
        test-client keyword arguments."""
        return {"HTTP_AUTHORIZATION": basic_auth(self.username, self.secret)}


@pytest.fixture
def spec_robot(db: None, django_user_model: Any) -> SpecRobot:
    """Organisation `library` and its robot `ci`, which may create repositories there (and
    so administers those it creates). A default grant lets it write repositories made
    straight in the database (tests.factories), as the organisation's CI would."""
    from accounts.actions import robot_create, token_create
    from teams.actions import default_grant_add, organisation_create
    from teams.models import Level

    # No password: nothing to hash.
    owner = django_user_model.objects.create_user(f"{SPEC_ORGANISATION}-owner")
    org = organisation_create(name=SPEC_ORGANISATION, owner=owner)
    robot = robot_create(organisation=org, name="ci", created_by=owner, may_create=True)
    default_grant_add(organisation=org, level=Level.WRITE, robot=robot)
    _, secret = token_create(name="spec-tests", robot=robot)
    return SpecRobot(robot.username, secret)


@pytest.fixture
def registry_auth(db: None, django_user_model: Any, fast_passwords: None) -> dict[str, str]:
    """Basic credentials of a site administrator, for tests about something other than
    permissions (garbage collection, background jobs) that push wherever they like."""
    django_user_model.objects.create_superuser("root", "root@example.com", "root-password")
    return {"HTTP_AUTHORIZATION": basic_auth("root", "root-password")}


@pytest.fixture
def client_auth() -> str:
    """How the spec tests' client signs in: "basic" (Basic straight to /v2/) or "bearer"
    (tokens from /auth/token, as docker does); a module overrides this to run both."""
    return "basic"


@pytest.fixture
def client(request: pytest.FixtureRequest, client_auth: str) -> Client:
    """The /v2/ API tests (tests/test_api_*.py) act as the robot `library+ci`, an ordinary
    actor, so they test the protocol through the permission path; every other test signs
    in as whoever it needs, per request."""
    if not request.module.__name__.startswith("tests.test_api_"):
        return Client()
    robot: SpecRobot = request.getfixturevalue("spec_robot")
    if client_auth == "bearer":
        from tests.helpers import BearerClient

        return BearerClient(robot.username, robot.secret)
    return Client(**robot.basic)


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture(autouse=True)
def _no_remembered_namespaces() -> None:
    """Namespace owners remembered for the audit trail by an earlier test must not leak here."""
    from audit.recording import forget_namespaces

    forget_namespaces()
