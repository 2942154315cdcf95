"""Audit events and the seals that chain them; both are insert-only.

An event is written in the transaction of the change it describes. A seal is added
shortly after by audit.sealing: per chain, a contiguous sequence number and
hash = sha256(prev_hash + canonical JSON of the event), so that altering, removing
or inserting a row shows (audit.verify). On PostgreSQL a trigger refuses UPDATE
and DELETE on both tables (migration 0002) unless retention says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

from django.conf import settings
from django.db import connections, models, router

from audit.canonical import GENESIS, iso


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


def insert_rows(
    model: type[models.Model], names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT rows given as sequences of values in `names` (attnames) order, each already
    as the database takes it: str, int or None; a datetime as datetime_adapter() gives
    it, JSON as its text.

    For the pull events and the seals written in batches: bulk_create spent more time
    building its multi-row statement, and making the model instances, than the database
    spent writing the rows. On PostgreSQL COPY ... FROM STDIN, a fraction of the server's
    work of one INSERT per row; elsewhere one statement run for each row (executemany).
    """
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(
        quote(str(model._meta.get_field(name).column))  # type: ignore[union-attr]
        for name in names
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - names from the model
            table, columns, ", ".join(["%s"] * len(names))
        )
        cursor.executemany(sql, rows)


def datetime_adapter(connection: Any) -> Callable[[datetime], Any]:
    """An aware datetime as insert_rows takes it: on SQLite exactly the text Django's
    adapt_datetimefield_value stores (naive UTC, str()), which compares as text with
    what queries pass; on PostgreSQL the canonical form (audit.canonical.iso), which
    timestamptz reads back to the same microsecond."""
    if connection.vendor == "postgresql":
        return iso
    if connection.vendor == "sqlite" and settings.USE_TZ:
        tz = connection.timezone
        return lambda value: str(value.astimezone(tz).replace(tzinfo=None))
    return connection.ops.adapt_datetimefield_value  # type: ignore[no-any-return]


def new_ids(model: type[models.Model], count: int) -> list[int]:
    """Primary keys for `count` rows about to be inserted in this transaction, ascending.

    PostgreSQL: taken from the column's sequence, as an INSERT would take them. SQLite:
    the next ones after the largest ever used (AUTOINCREMENT); only one transaction
    writes at a time (Hub begins them IMMEDIATE), and one that began without the write
    lock fails to take it after another wrote, so no other row can get these ids.
    """
    if count <= 0:
        return []
    connection = connections[router.db_for_write(model)]
    table = model._meta.db_table
    quoted = connection.ops.quote_name(table)
    pk = connection.ops.quote_name(str(model._meta.pk.column))  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [quoted, str(model._meta.pk.column), count],  # type: ignore[union-attr]
            )
            return sorted(row[0] for row in cursor.fetchall())
        if connection.vendor != "sqlite":
            raise NotImplementedError(f"new_ids on {connection.vendor}")
        cursor.execute(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = %s), 0),"  # noqa: S608
            f" coalesce((SELECT max({pk})"
            f" FROM {quoted}), 0))",
            [table],
        )
        last = int(cursor.fetchone()[0])
    return list(range(last + 1, last + count + 1))


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
