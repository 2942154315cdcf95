from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
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


@pytest.fixture
def registry_auth(db: None, django_user_model: Any, fast_passwords: None) -> dict[str, str]:
    """Basic credentials of a site administrator, as test-client keyword arguments."""
    django_user_model.objects.create_superuser("root", "root@example.com", "root-password")
    return {"HTTP_AUTHORIZATION": basic_auth("root", "root-password")}


@pytest.fixture
def client(request: pytest.FixtureRequest) -> Client:
    """The /v2/ API tests (tests/test_api_*.py) act as a site administrator, so they test
    the protocol; every other test signs in as whoever it needs, per request."""
    if request.module.__name__.startswith("tests.test_api_"):
        return Client(**request.getfixturevalue("registry_auth"))
    return Client()


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
