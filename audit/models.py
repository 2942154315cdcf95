"""Audit events and the seals that chain them; both are insert-only.

An event is written in the transaction of the change it describes. A seal is added
shortly after by audit.sealing: per chain, a contiguous sequence number and
hash = sha256(prev_hash + canonical JSON of the event), so that altering, removing
or inserting a row shows (audit.verify). On PostgreSQL a trigger refuses UPDATE
and DELETE on both tables (migration 0002) unless retention says otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from django.conf import settings
from django.db import connections, models, router

from audit.canonical import GENESIS


class AppendOnly(Exception):
    pass


class InsertOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnly("audit rows are never updated")

    def delete(self) -> NoReturn:  # type: ignore[override]
        raise AppendOnly("audit rows are never deleted")


class InsertOnly(models.Model):
    objects = InsertOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("audit rows are never updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        raise AppendOnly("audit rows are never deleted")


def insert_all(model: type[InsertOnly], rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT new rows, each a mapping of field attnames (an instance's vars() will do):
    one statement, run for each row (executemany). Primary keys are not read back.

    For the pull events and the seals written in batches: bulk_create spent more time
    building its multi-row statement, and making the model instances, than the database
    spent writing the rows.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(str(f.column)) for f in fields)
    if connection.vendor == "postgresql":
        _copy_all(connection, table, columns, fields, rows)
        return
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - names from the model
        table, columns, ", ".join(["%s"] * len(fields))
    )
    # Only dates and JSON need the backend's adaptation; strings and numbers go as they are.
    adapt = [
        (f.attname, f if isinstance(f, models.DateTimeField | models.JSONField) else None)
        for f in fields
    ]
    values = [
        [
            field.get_db_prep_save(row[name], connection) if field else row[name]
            for name, field in adapt
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def _copy_all(
    connection: Any, table: str, columns: str, fields: list[Any], rows: Sequence[Mapping[str, Any]]
) -> None:
    """PostgreSQL: COPY ... FROM STDIN, a fraction of the server's work of one INSERT per
    row. JSON goes as its text (psycopg's text dumper for a str), "{}" for most events."""
    names = [f.attname for f in fields]
    json_at = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    sql = f"COPY {table} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            values = [row[name] for name in names]
            for i in json_at:
                values[i] = "{}" if values[i] == {} else dumps(values[i])
            copy.write_row(values)


class Event(InsertOnly):
    class ActorKind(models.TextChoices):
        USER = "user"
        ROBOT = "robot"
        ANONYMOUS = "anonymous"
        # Someone at the server's command line (e.g. `hub config apply` without --as).
        OPERATOR = "operator"

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        DENIED = "denied"

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(db_index=True)
    # "org:<name>", "user:<name>" or "site": each chain is sealed on its own.
    chain = models.CharField(max_length=80)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=200, blank=True)
    auth_method = models.CharField(max_length=16)
    token_id = models.BigIntegerField(null=True, blank=True)
    client_address = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    organisation = models.CharField(max_length=64, blank=True)
    repository = models.CharField(max_length=255, blank=True)
    tag = models.CharField(max_length=128, blank=True)
    digest = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["chain", "id"], name="audit_event_chain"),
            models.Index(fields=["organisation", "id"], name="audit_event_org"),
            models.Index(fields=["repository", "id"], name="audit_event_repo"),
            models.Index(fields=["actor_name", "id"], name="audit_event_actor"),
            models.Index(fields=["action", "id"], name="audit_event_action"),
            models.Index(fields=["client_address", "id"], name="audit_event_client"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.action} {self.outcome} by {self.actor_name}"


class Seal(InsertOnly):
    # No database constraint: a removed event must leave its seal behind to be found.
    event = models.OneToOneField(
        Event, on_delete=models.DO_NOTHING, db_constraint=False, related_name="seal"
    )
    chain = models.CharField(max_length=80)
    seq = models.BigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    sealed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_seal_seq")]

    def __str__(self) -> str:
        return f"{self.chain}#{self.seq}"


class Archive(InsertOnly):
    """The oldest events of a chain, seq first_seq..last_seq, archived to the blob store as
    gzip-compressed JSON lines (audit.archives) and removed from the tables in the
    transaction that wrote this row. The chain continues from `head`."""

    id = models.BigAutoField(primary_key=True)
    chain = models.CharField(max_length=80)
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    count = models.BigIntegerField()
    anchor = models.CharField(max_length=64)  # the hash before first_seq (its prev_hash)
    head = models.CharField(max_length=64)  # the hash of last_seq
    oldest = models.DateTimeField()
    newest = models.DateTimeField()
    cutoff = models.DateTimeField()
    name = models.CharField(max_length=512, unique=True)  # the object in the blob store
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "first_seq"], name="audit_archive_start")
        ]
        indexes = [models.Index(fields=["chain", "last_seq"], name="audit_archive_chain")]

    def __str__(self) -> str:
        return f"{self.chain}#{self.first_seq}..{self.last_seq}"


def chain_start(chain: str) -> tuple[int, str]:
    """Where a chain's events in the table start from: (its last archived seq, that
    event's hash), or (0, GENESIS) when nothing of it was archived."""
    last = Archive.objects.filter(chain=chain).order_by("-last_seq").values("last_seq", "head")
    row = last.first()
    return (row["last_seq"], row["head"]) if row else (0, GENESIS)


class ImportedEvent(models.Model):
    """An archived event read back (`hub audit archive import`) for investigation.

    Kept apart from Event: a chain in audit_event starts after its last archive, so old
    events put back there would break it. Each row was checked against its archive's
    hashes on import; it is a copy (the archive stays the record) and may be deleted.
    """

    archive = models.ForeignKey(Archive, on_delete=models.PROTECT, related_name="imported")
    event_id = models.BigIntegerField()
    chain = models.CharField(max_length=80)
    seq = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    content = models.JSONField()  # the event's hashed fields, as archived
    imported_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["archive", "seq"], name="audit_imported_seq")
        ]
        indexes = [models.Index(fields=["chain", "seq"], name="audit_imported_chain")]

    def __str__(self) -> str:
        return f"imported {self.chain}#{self.seq}"


class ExportJob(models.Model):
    """An export too big to stream in a request, written to the blob store by whichever
    runner claims it (audit.export_runner) and offered for download, to its requester
    only, until expires_at (then the periodic job removes the file)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        EXPIRED = "expired"

    id = models.BigAutoField(primary_key=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="audit_exports"
    )
    format = models.CharField(max_length=8)
    # The export's filters as given (audit.queries.FILTERS); re-applied, with what the
    # requester may read then, when the job runs.
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    row_count = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    # The object's name: where the current attempt writes while running, the file once done.
    storage_key = models.CharField(max_length=512, blank=True)
    error = models.TextField(blank=True)
    # The runner that holds the job (a random token per claim), until when unless it renews
    # its lease, and how many times it was claimed (a runner that died counts one).
    claim = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["requester", "-id"], name="audit_export_requester"),
            models.Index(fields=["status", "expires_at"], name="audit_export_expiry"),
        ]

    def __str__(self) -> str:
        return f"export {self.id} ({self.format}, {self.status})"
