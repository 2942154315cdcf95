"""GET /v2/, unknown endpoints and methods, and the error body format."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SpecRobot
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["basic", "bearer"])
def client_auth(request: pytest.FixtureRequest) -> str:
    """Each test here runs with Basic credentials and with bearer tokens from /auth/token."""
    return str(request.param)


def test_it_answers_the_base_endpoint_with_the_api_version(client) -> None:
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"
    assert json.loads(response.content) == {}


def test_it_answers_head_on_the_base_endpoint(client) -> None:
    response = client.head("/v2/")
    assert response.status_code == 200
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.content == b""


def test_it_sends_the_api_version_header_on_errors_too(client) -> None:
    response = client.get("/v2/no/such/thing/here")
    assert_error(response, 404)
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"


def test_it_refuses_an_unknown_method_with_405_and_allow(client) -> None:
    response = client.post("/v2/")
    assert_error(response, 405, "UNSUPPORTED")
    assert set(response["Allow"].split(", ")) == {"GET", "HEAD"}


def test_it_refuses_an_invalid_repository_name(client) -> None:
    response = client.get("/v2/UPPER/case/manifests/latest")
    error = assert_error(response, 400, "NAME_INVALID")
    assert error["detail"] == {"name": "UPPER/case"}


def test_it_refuses_a_name_longer_than_255(client) -> None:
    name = "/".join(["a" * 50] * 6)
    assert_error(client.get(f"/v2/{name}/tags/list"), 400, "NAME_INVALID")


def test_it_answers_unknown_repository_with_name_unknown(client) -> None:
    assert_error(client.get("/v2/library/missing/tags/list"), 404, "NAME_UNKNOWN")
    assert_error(client.get("/v2/library/missing/manifests/latest"), 404, "NAME_UNKNOWN")


def test_it_answers_a_namespace_nobody_owns_as_a_repository_it_may_not_see(
    client, client_auth: str
) -> None:
    # With Basic: as if it did not exist. A bearer token holds nothing for it, so the
    # token endpoint gave nothing and the answer stays 401, as for a private repository.
    status, code = {"basic": (404, "NAME_UNKNOWN"), "bearer": (401, "UNAUTHORIZED")}[client_auth]
    assert_error(client.get("/v2/nobody/here/tags/list"), status, code)
    assert_error(client.get("/v2/nobody/here/manifests/latest"), status, code)


def test_it_needs_no_csrf_token_for_writes(spec_robot: SpecRobot) -> None:
    from django.test import Client

    strict = Client(enforce_csrf_checks=True, **spec_robot.basic)
    response = strict.post("/v2/library/csrf/blobs/uploads/")
    assert response.status_code == 202
