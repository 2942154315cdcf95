"""factory_boy factories for rows the API tests need in bulk (listing pages)."""

from __future__ import annotations

import hashlib
import json

import factory

from registry import mediatypes as mt
from registry.models import Manifest, Repository, Tag
from teams.actions import repository_created
from teams.permissions import ANONYMOUS


class RepositoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Repository
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    # In the spec tests' organisation (tests/conftest.py, spec_robot).
    name = factory.Sequence(lambda n: f"library/factory-{n:04d}")

    @factory.post_generation
    def filed(obj: Repository, create: bool, extracted: object, **kwargs: object) -> None:
        """Filed under its namespace with the organisation's default grants, as a push
        that creates a repository files it."""
        if create:
            repository_created(repository=obj, actor=ANONYMOUS)


def _empty_index(n: int) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [],
            "annotations": {"n": str(n)},
        }
    ).encode()


class ManifestFactory(factory.django.DjangoModelFactory):
    """An empty OCI index: it references nothing, so it needs no blobs."""

    class Meta:
        model = Manifest

    class Params:
        seq = factory.Sequence(lambda n: n)

    repository = factory.SubFactory(RepositoryFactory)
    content = factory.LazyAttribute(lambda o: _empty_index(o.seq))
    digest = factory.LazyAttribute(lambda o: f"sha256:{hashlib.sha256(o.content).hexdigest()}")
    size = factory.LazyAttribute(lambda o: len(o.content))
    media_type = mt.OCI_INDEX


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    repository = factory.SubFactory(RepositoryFactory)
    manifest = factory.SubFactory(ManifestFactory, repository=factory.SelfAttribute("..repository"))
    name = factory.Sequence(lambda n: f"tag-{n:04d}")
