"""/api/repositories/{name}/policy/, /api/orgs/{org}/policy/ and /api/namespaces/{ns}/quota/.

Repository administrators set a repository's policy and preview what its retention
would remove; organisation owners set the organisation's; site administrators set
quotas, which everyone who may see the namespace may read with its usage.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_auth import api_actor
from registry.models import Repository
from registry.policies import actions
from registry.policies.models import Policy
from registry.policies.retention import effective_policy, plan
from registry.policies.rules import namespace_usage
from teams.api.common import managed_organisation
from teams.api.repositories import NAME_PARAMETER, administered_repository
from teams.models import Namespace
from teams.permissions import Actor, may_see_organisation


class RetentionSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(default=False)
    keep_last = serializers.IntegerField(min_value=0, allow_null=True, default=None)
    keep_patterns = serializers.ListField(
        child=serializers.CharField(max_length=128), default=list, max_length=100
    )
    remove_older_than_days = serializers.IntegerField(
        min_value=1, max_value=36500, allow_null=True, default=None
    )


class PolicySerializer(serializers.Serializer):
    immutable_tags = serializers.ListField(
        child=serializers.CharField(max_length=128), default=list, max_length=100
    )
    retention = RetentionSerializer(allow_null=True, default=None)


def _values(data: dict[str, Any]) -> dict[str, Any]:
    retention = data.get("retention") or {}
    return {
        "immutable_tags": data["immutable_tags"],
        "retention_enabled": retention.get("enabled", False),
        "keep_last": retention.get("keep_last"),
        "keep_patterns": retention.get("keep_patterns", []),
        "remove_older_than_days": retention.get("remove_older_than_days"),
    }


def _valid(request: Request) -> dict[str, Any]:
    data = PolicySerializer(data=request.data)
    data.is_valid(raise_exception=True)
    return _values(data.validated_data)


class RepositoryPolicy(GenericAPIView):
    serializer_class = PolicySerializer

    @extend_schema(summary="A repository's policy (administrators)", parameters=[NAME_PARAMETER])
    def get(self, request: Request, name: str) -> Response:
        repository = administered_repository(api_actor(request), name)
        return Response(actions.describe(Policy.objects.filter(repository=repository).first()))

    @extend_schema(
        summary="Set a repository's policy (administrators)", parameters=[NAME_PARAMETER]
    )
    def put(self, request: Request, name: str) -> Response:
        repository = administered_repository(api_actor(request), name)
        return Response(
            actions.describe(actions.policy_set(repository=repository, values=_valid(request)))
        )


class RepositoryRetentionPreview(GenericAPIView):
    serializer_class = PolicySerializer

    @extend_schema(
        summary="What a retention policy would remove now, removing nothing (administrators)",
        description="Without a body: the policy in force. With one: that policy, not saved.",
        parameters=[NAME_PARAMETER],
    )
    def post(self, request: Request, name: str) -> Response:
        repository: Repository = administered_repository(api_actor(request), name)
        if request.data:
            policy = Policy(repository=repository, **_valid(request))
        else:
            policy = effective_policy(repository) or Policy(repository=repository)
        removals = plan(repository, policy) if policy.has_retention else []
        return Response(
            {
                "remove": [
                    {
                        "tag": r.tag,
                        "digest": r.digest,
                        "pushed_at": r.pushed_at.isoformat(),
                        "reason": r.reason,
                    }
                    for r in removals
                ]
            }
        )


class OrganisationPolicy(GenericAPIView):
    serializer_class = PolicySerializer

    @extend_schema(summary="An organisation's policy, for all its repositories (owners)")
    def get(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(api_actor(request), org)
        return Response(actions.describe(Policy.objects.filter(organisation=organisation).first()))

    @extend_schema(summary="Set an organisation's policy (owners)")
    def put(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(api_actor(request), org)
        return Response(
            actions.describe(actions.policy_set(organisation=organisation, values=_valid(request)))
        )


class QuotaSerializer(serializers.Serializer):
    limit_bytes = serializers.IntegerField(min_value=0, allow_null=True)


def _visible_namespace(actor: Actor, name: str) -> Namespace:
    namespace = Namespace.objects.select_related("organisation").filter(name=name).first()
    if namespace is not None:
        if actor.is_superuser and actor.granted is None:
            return namespace
        if namespace.organisation is not None and may_see_organisation(
            actor, namespace.organisation
        ):
            return namespace
        if actor.user is not None and namespace.user_id == actor.user.pk:
            return namespace
    raise NotFound(f"no namespace named {name!r}")


class NamespaceQuota(GenericAPIView):
    serializer_class = QuotaSerializer

    def _answer(self, namespace: Namespace) -> Response:
        quota = getattr(namespace, "quota", None)
        return Response(
            {
                "namespace": namespace.name,
                "limit_bytes": quota.limit_bytes if quota is not None else None,
                "used_bytes": namespace_usage(namespace.pk),
            }
        )

    @extend_schema(summary="A namespace's storage quota and what it uses (each blob once)")
    def get(self, request: Request, namespace: str) -> Response:
        return self._answer(_visible_namespace(api_actor(request), namespace))

    @extend_schema(summary="Set or clear (null) a namespace's quota (site administrators)")
    def put(self, request: Request, namespace: str) -> Response:
        actor = api_actor(request)
        found = _visible_namespace(actor, namespace)
        if not (actor.is_superuser and actor.granted is None and actor.token is None):
            raise PermissionDenied("only site administrators set quotas")
        data = QuotaSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        actions.quota_set(namespace=found, limit_bytes=data.validated_data["limit_bytes"])
        return self._answer(Namespace.objects.select_related("organisation").get(pk=found.pk))
