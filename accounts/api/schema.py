"""How HubAuthentication appears in the OpenAPI schema: HTTP Basic and Bearer."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class HubAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.api_auth.HubAuthentication"
    name = ["basicAuth", "bearerAuth"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {
                "type": "http",
                "scheme": "basic",
                "description": "A password, a personal access token (username + token), "
                "or a robot token (org+robot + token).",
            },
            {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        ]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        # Either one (OR), not both.
        return [{"basicAuth": []}, {"bearerAuth": []}]
