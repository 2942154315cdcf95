"""/api/repositories/{name}/webhooks/, /api/orgs/{org}/webhooks/ and /api/webhooks/{id}/.

Repository administrators manage a repository's hooks, organisation owners their
organisation's; a hook the actor may not manage answers 404 as a missing one does.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_auth import api_actor
from registry.webhooks import actions
from registry.webhooks.models import Webhook, WebhookDelivery
from registry.webhooks.safety import UnsafeTarget, resolve
from teams.api.common import managed_organisation, paginated
from teams.api.repositories import NAME_PARAMETER, administered_repository
from teams.permissions import Actor, may_administer_repository, may_manage_organisation


def _checked_url(url: str) -> str:
    try:
        resolve(url)
    except UnsafeTarget as exc:
        raise serializers.ValidationError(str(exc)) from None
    return url


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.SerializerMethodField()
    repository = serializers.SerializerMethodField()
    organisation = serializers.SerializerMethodField()

    class Meta:
        model = Webhook
        fields = [
            "id",
            "url",
            "events",
            "repository",
            "organisation",
            "enabled",
            "disabled_reason",
            "failing_since",
            "last_success_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_events(self, hook: Webhook) -> list[str]:
        return actions.events_of(hook)

    def get_repository(self, hook: Webhook) -> str | None:
        return hook.repository.name if hook.repository is not None else None

    def get_organisation(self, hook: Webhook) -> str | None:
        return hook.organisation.name if hook.organisation is not None else None


class WebhookInputSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, validators=[_checked_url])
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=list(actions.FLAGS)),
        allow_empty=False,
        default=lambda: ["push", "tag_delete"],
    )
    secret = serializers.CharField(min_length=16, max_length=200, required=False)


class WebhookUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000, validators=[_checked_url], required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=list(actions.FLAGS)),
        allow_empty=False,
        required=False,
    )
    secret = serializers.CharField(min_length=16, max_length=200, required=False)
    enabled = serializers.BooleanField(required=False)


class AttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


class DeliverySerializer(serializers.ModelSerializer):
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "state",
            "attempts",
            "next_attempt_at",
            "created_at",
            "attempt_log",
        ]
        read_only_fields = fields


def _created(hook: Webhook) -> Response:
    # The secret is shown once, when it is made; never again.
    return Response(
        {**WebhookSerializer(hook).data, "secret": hook.secret}, status=status.HTTP_201_CREATED
    )


def _create(request: Request, actor: Actor, **scope: Any) -> Response:
    data = WebhookInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    hook = actions.webhook_create(
        url=data.validated_data["url"],
        events=data.validated_data["events"],
        secret=data.validated_data.get("secret"),
        created_by=actor.name,
        **scope,
    )
    return _created(hook)


class RepositoryWebhookList(GenericAPIView):
    serializer_class = WebhookSerializer
    queryset = Webhook.objects.none()

    @extend_schema(summary="A repository's webhooks (administrators)", parameters=[NAME_PARAMETER])
    def get(self, request: Request, name: str) -> Response:
        repository = administered_repository(api_actor(request), name)
        hooks = Webhook.objects.filter(repository=repository).select_related("repository")
        return paginated(
            self, hooks.order_by("pk"), lambda page: WebhookSerializer(page, many=True).data
        )

    @extend_schema(
        summary="Add a webhook to a repository (administrators)",
        parameters=[NAME_PARAMETER],
        request=WebhookInputSerializer,
    )
    def post(self, request: Request, name: str) -> Response:
        actor = api_actor(request)
        return _create(request, actor, repository=administered_repository(actor, name))


class OrganisationWebhookList(GenericAPIView):
    serializer_class = WebhookSerializer
    queryset = Webhook.objects.none()

    @extend_schema(summary="An organisation's webhooks, for all its repositories (owners)")
    def get(self, request: Request, org: str) -> Response:
        organisation = managed_organisation(api_actor(request), org)
        hooks = Webhook.objects.filter(organisation=organisation).select_related("organisation")
        return paginated(
            self, hooks.order_by("pk"), lambda page: WebhookSerializer(page, many=True).data
        )

    @extend_schema(
        summary="Add a webhook to an organisation (owners)", request=WebhookInputSerializer
    )
    def post(self, request: Request, org: str) -> Response:
        actor = api_actor(request)
        return _create(request, actor, organisation=managed_organisation(actor, org))


def managed_webhook(actor: Actor, hook_id: int) -> Webhook:
    hook = Webhook.objects.select_related("repository", "organisation").filter(pk=hook_id).first()
    if hook is not None:
        if hook.repository is not None and may_administer_repository(actor, hook.repository):
            return hook
        if hook.organisation is not None and may_manage_organisation(actor, hook.organisation):
            return hook
    raise NotFound(f"no webhook {hook_id}")


class WebhookDetail(GenericAPIView):
    serializer_class = WebhookSerializer
    queryset = Webhook.objects.none()

    @extend_schema(summary="A webhook, with why it was switched off if it was")
    def get(self, request: Request, hook_id: int) -> Response:
        return Response(WebhookSerializer(managed_webhook(api_actor(request), hook_id)).data)

    @extend_schema(
        summary="Change a webhook, or switch it back on", request=WebhookUpdateSerializer
    )
    def patch(self, request: Request, hook_id: int) -> Response:
        hook = managed_webhook(api_actor(request), hook_id)
        data = WebhookUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hook = actions.webhook_update(hook=hook, **data.validated_data)
        return Response(WebhookSerializer(hook).data)

    @extend_schema(summary="Remove a webhook", responses={204: None})
    def delete(self, request: Request, hook_id: int) -> Response:
        actions.webhook_delete(hook=managed_webhook(api_actor(request), hook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryList(GenericAPIView):
    serializer_class = DeliverySerializer
    queryset = WebhookDelivery.objects.none()

    @extend_schema(summary="A webhook's deliveries, newest first, with every attempt")
    def get(self, request: Request, hook_id: int) -> Response:
        hook = managed_webhook(api_actor(request), hook_id)
        deliveries = (
            WebhookDelivery.objects.filter(webhook=hook)
            .prefetch_related("attempt_log")
            .order_by("-created_at")
        )
        return paginated(self, deliveries, lambda page: DeliverySerializer(page, many=True).data)
