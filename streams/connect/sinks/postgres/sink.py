"""PostgreSQL sink: each batch is folded per customer, then merged by set-based upserts.

The customers of a batch are dealt over a few sessions; each copies its share into a staging
table and merges it with one statement, all sessions at once from threads of their own, so the
server works on every share while the worker consumes the next batch.

The sink takes the messages as they came: the Rust crate writes the COPY text of every
customer with one plain upsert in the batch straight from its bytes
(``UpsertDecoder.copy_text``), and only the others (deletes, customers seen more than once,
values PostgreSQL may refuse) are decoded and folded in Python, their rows written by
``streams._native.copy_rows``. ``STREAMS_KERNEL=python`` selects the reference for all:
decoding, ``fold`` and ``sql``'s ``upsert_row`` and ``profile_row``, which also write any
part holding a value the Rust code does not write exactly.

The table keeps, per customer and property, the value, its timestamp and its source, so the
database keeps the same winner as the processor whatever order, duplicates or replays the
batches arrive in. The stored format and the SQL live in ``sql``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from streams._native import copy_rows, suspect_upserts
from streams.codecs.upserts import UpsertCodec
from streams.connect.errors import RetryableSinkError, SinkConfigError, SinkError
from streams.connect.records import RawRecord, Rejection, SinkRecord, WriteResult, decoded
from streams.connect.sink import RawBatchingSink
from streams.connect.sinks.postgres import sql as q
from streams.logs import mask_dsn
from streams.merge import MergePolicy, apply_event, upsert_as_event
from streams.model import Op, Profile, Upsert
from streams.optional import requires
from streams.settings import Settings
from streams.validation import validation_problems

with requires("psycopg", "the PostgreSQL sink"):
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.rows import TupleRow

logger = logging.getLogger(__name__)

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1
MAX_TABLE = MAX_IDENTIFIER - len(q.VALUES_VIEW_SUFFIX)
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
REFUSED = "refused_by_postgres"
# Customers per call of the Rust encoder: the server parses one part while the next is encoded.
NATIVE_PART = 500
# Errors about the data: isolate the offending rows. Connection-level ones (lost connection,
# deadlock, serialization, timeout, a failover's read-only replica): retry the batch.
_ROW_ERRORS = (psycopg.DataError, psycopg.IntegrityError)
_TRANSIENT = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.ReadOnlySqlTransaction,
)

T = TypeVar("T")
Connection = psycopg.Connection[TupleRow]
# A share sent to its session: the open pipeline of its merge, None when a row was refused.
_Sent = tuple[Connection, "FoldedBatch", ExitStack | None]


class PostgresOptions(BaseModel):
    """The ``[sink]`` table of a postgres connector."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dsn: SecretStr
    table: str = Field(default="profiles", pattern=IDENTIFIER, max_length=MAX_TABLE)
    db_schema: str = Field(
        default="public", alias="schema", pattern=IDENTIFIER, max_length=MAX_IDENTIFIER
    )
    connect_timeout_s: int = Field(default=10, ge=1, le=3600)
    statement_timeout_ms: int = Field(default=60_000, ge=0)
    sessions: int = Field(default=2, ge=1, le=16)


def refusal(upsert: Upsert) -> str | None:
    """Why this upsert can never be stored (jsonb, text or the rank key refuse it), else None."""
    deleted_at = upsert.deleted_at
    if deleted_at is not None and not INT64_MIN <= deleted_at <= INT64_MAX:
        return "timestamp_out_of_range"
    properties = upsert.properties
    texts = [upsert.customer_id, upsert.source, *properties]
    for value, last_update, _ in properties.values():
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                return "non_finite_float"  # JSON has no NaN or Infinity
        elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            return "integer_out_of_range"  # the rank key encodes 64-bit integers
        if not INT64_MIN <= last_update <= INT64_MAX:
            return "timestamp_out_of_range"
    text = "".join(texts)
    if "\x00" in text:
        return "nul_character"  # text and jsonb cannot hold U+0000
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return "invalid_unicode"  # a lone surrogate has no UTF-8 form
    return None


@dataclass(slots=True)
class FoldedBatch:
    """A batch merged per customer in memory, plus the records refused before any I/O.

    Most customers appear once in a batch: their upsert is kept as it is (``singles``) and
    encoded straight from its properties; the others are folded into a profile. A share may
    also carry rows the crate wrote straight from the messages (``text``, from ``wired``).
    """

    batch: Sequence[SinkRecord]
    singles: dict[str, Upsert] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    text: bytes = b""
    wired: Sequence[RawRecord] = ()

    def __len__(self) -> int:
        return len(self.singles) + len(self.profiles) + len(self.wired)

    def rows(self) -> Iterator[q.Row]:
        upsert_row = q.upsert_row
        for upsert in self.singles.values():
            if upsert.properties:
                yield upsert_row(upsert)
        for customer_id, profile in self.profiles.items():
            if not profile.is_empty():
                yield q.profile_row(customer_id, profile)

    def parts(self, size: int) -> Iterator[FoldedBatch]:
        """The customers ``size`` at a time, in the order of ``rows``."""
        singles = iter(self.singles.items())
        while some_singles := dict(islice(singles, size)):
            yield FoldedBatch(self.batch, singles=some_singles)
        profiles = iter(self.profiles.items())
        while some_profiles := dict(islice(profiles, size)):
            yield FoldedBatch(self.batch, profiles=some_profiles)

    def shares(self, count: int) -> list[FoldedBatch]:
        """The customers dealt into at most ``count`` non-empty batches."""
        shares = [FoldedBatch(self.batch) for _ in range(count)]
        for index, (customer_id, upsert) in enumerate(self.singles.items()):
            shares[index % count].singles[customer_id] = upsert
        for index, (customer_id, profile) in enumerate(self.profiles.items(), len(self.singles)):
            shares[index % count].profiles[customer_id] = profile
        return [share for share in shares if share]

    def customers(self) -> dict[str, Profile]:
        """Every customer's folded profile (looked up only when the server refuses)."""
        merged = {customer_id: _profile_of(upsert) for customer_id, upsert in self.singles.items()}
        merged.update(self.profiles)
        return merged

    def records_of(self, customer_id: str) -> list[SinkRecord]:
        """The storable records of one customer (looked up only when the server refuses)."""
        return [
            record
            for record in self.batch
            if record.upsert.customer_id == customer_id and refusal(record.upsert) is None
        ]


def _profile_of(upsert: Upsert) -> Profile:
    """What apply_event makes of an upsert on an empty profile, without the detour."""
    source = upsert.source
    return Profile(
        {
            name: state if state.source == source else state._replace(source=source)
            for name, state in upsert.properties.items()
        }
    )


def fold(
    batch: Sequence[SinkRecord], policy: MergePolicy, *, screened: bool = False
) -> FoldedBatch:
    """Apply every storable record to one in-memory profile per customer (the processor's merge).

    ``screened``: ``refusal`` runs only on the records the Rust encoder singles out
    (``suspect_upserts``, which holds every refused one among its suspects), not on all."""
    folded = FoldedBatch(batch)
    singles, profiles, rejected = folded.singles, folded.profiles, folded.rejected
    suspects: Container[int] | None = None
    if screened:
        suspects = frozenset(suspect_upserts([record.upsert for record in batch]))
    for index, record in enumerate(batch):
        upsert = record.upsert
        if suspects is None or index in suspects:
            reason = refusal(upsert)
            if reason is not None:
                rejected.append(Rejection(record, reason))
                continue
        customer_id = upsert.customer_id
        profile = profiles.get(customer_id)
        if profile is None:
            single = singles.pop(customer_id, None)
            if single is not None:
                profile = profiles[customer_id] = _profile_of(single)
            elif upsert.op is Op.UPSERT:
                singles[customer_id] = upsert
                continue
            else:
                profile = profiles[customer_id] = Profile()
        apply_event(profile, upsert_as_event(upsert), policy)
    return folded


class PostgresSink(RawBatchingSink):
    """Writes profiles to ``<schema>.<table>``; plain values in the ``<table>_values`` view."""

    def __init__(self, options: Mapping[str, Any], *, name: str, settings: Settings) -> None:
        super().__init__()
        self.name = name
        try:
            self.options = PostgresOptions.model_validate(dict(options))
        except ValidationError as exc:
            # from None: the chained error would print the input values, the DSN included.
            raise SinkConfigError(f"postgres sink {name}: {validation_problems(exc)}") from None
        self._dsn = self.options.dsn.get_secret_value()
        try:
            conninfo_to_dict(self._dsn)
        except psycopg.ProgrammingError:
            # from None: libpq's parse error quotes fragments of the DSN.
            raise SinkConfigError(f"postgres sink {name}: dsn is not a valid conninfo") from None
        self.masked_dsn = mask_dsn(self._dsn)
        self.policy = MergePolicy(settings.priorities())
        self._priorities = {"priorities": q.priorities_json(self.policy.priorities)}
        self._native_rows = settings.kernel == "native"
        self._codec = UpsertCodec(settings.output_format, kernel=settings.kernel)
        self._names = q.identifiers(self.options.db_schema, self.options.table)
        self._copy_sql = q.statement(q.COPY_STAGING, self._names)
        self._upsert_sql = q.upsert_from_staging(self._names)
        self._upsert_one_sql = q.upsert_one_row(self._names)
        self._conns: list[Connection] = []
        self._senders = self._new_senders()
        self._migrated = False

    @property
    def target(self) -> str:
        return f"{self.options.db_schema}.{self.options.table}"

    def __repr__(self) -> str:
        return f"PostgresSink(name={self.name!r}, target={self.target!r}, dsn={self.masked_dsn!r})"

    def setup(self) -> None:
        """Connect and migrate; a transient failure is a RetryableSinkError."""
        self._guarded(self._connection)
        logger.info(
            "postgres sink ready name=%s target=%s dsn=%s", self.name, self.target, self.masked_dsn
        )

    def close(self) -> None:
        self._senders.shutdown()
        self._senders = self._new_senders()  # idle until used: a closed sink may be set up again
        self._drop_connection()

    def _new_senders(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.options.sessions, f"postgres-{self.name}"[:32])

    def write(self, batch: Sequence[RawRecord | SinkRecord]) -> WriteResult:
        return self.begin_write(batch)()

    def begin_write(self, batch: Sequence[RawRecord | SinkRecord]) -> Callable[[], WriteResult]:
        """Fold, copy and send every share's merge and COMMIT; the returned call waits for the
        server's answers (and isolates refused rows). The server merges meanwhile. Records
        come as messages (from the worker) or decoded (``SinkRecord``)."""
        started = time.perf_counter()
        shares, rejected = self._shares(batch)
        sending = self._guarded(lambda: self._send_shares(shares)) if shares else []

        def finish() -> WriteResult:
            if sending:
                sent = self._guarded(lambda: self._sent(sending))
                rejected.extend(self._guarded(lambda: self._collect(sent)))
            if rejected:
                reasons = Counter(rejection.reason for rejection in rejected)
                logger.warning(
                    "postgres sink rejected name=%s reasons=%s", self.name, dict(reasons)
                )
            logger.debug(
                "postgres sink wrote name=%s records=%d customers=%d rejected=%d ms=%.1f",
                self.name,
                len(batch),
                sum(map(len, shares)),
                len(rejected),
                (time.perf_counter() - started) * 1000,
            )
            return WriteResult(rejected)

        return finish

    def _shares(
        self, batch: Sequence[RawRecord | SinkRecord]
    ) -> tuple[list[FoldedBatch], list[Rejection]]:
        """The batch's customers dealt over the sessions, and the records refused before any
        I/O. The crate writes the rows of the customers with one plain upsert straight from
        their messages; the rest are decoded and folded here (all of them on the reference
        kernel, or when a message is not one the crate reads)."""
        count = self.options.sessions
        native = self._codec.native if self._native_rows else None
        messages = [record for record in batch if isinstance(record, RawRecord)]
        wire = None
        if native is not None and messages and len(messages) == len(batch):
            wire = native.copy_text([message.value for message in messages], count)
        if wire is None:
            records, rejected = self._decoded(batch)
            folded = fold(records, self.policy, screened=self._native_rows)
            return folded.shares(count), [*rejected, *folded.rejected]
        texts, to_fold, placed = wire
        records, rejected = self._decoded([messages[index] for index in to_fold])
        folded = fold(records, self.policy, screened=True)
        shares = folded.shares(count)
        shares += [FoldedBatch(records) for _ in range(count - len(shares))]
        for share, text, positions in zip(shares, texts, placed, strict=True):
            share.text = text
            share.wired = [messages[index] for index in positions]
        return [share for share in shares if share], [*rejected, *folded.rejected]

    def _decoded(
        self, batch: Sequence[RawRecord | SinkRecord]
    ) -> tuple[list[SinkRecord], list[Rejection]]:
        records: list[SinkRecord] = []
        rejected: list[Rejection] = []
        for record in batch:
            outcome = record if isinstance(record, SinkRecord) else decoded(record, self._codec)
            if isinstance(outcome, Rejection):
                rejected.append(outcome)
            else:
                records.append(outcome)
        return records, rejected

    def _unwired(self, share: FoldedBatch) -> FoldedBatch:
        """The share with the customers behind its crate-written rows decoded and folded too
        (the rare paths: a session not in UTF-8, a row the server refuses)."""
        if not share.wired:
            return share
        records, _ = self._decoded(share.wired)  # the crate read them: the reference does too
        merged = fold(records, self.policy)  # one upsert per customer: all singles
        merged.singles.update(share.singles)
        merged.profiles.update(share.profiles)
        merged.batch = [*share.batch, *records]
        return merged

    def _guarded(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except _TRANSIENT as exc:
            self._drop_connection()
            raise RetryableSinkError(
                f"postgres sink {self.name}: {type(exc).__name__}: {exc}"
            ) from exc
        except psycopg.Error as exc:
            raise SinkError(f"postgres sink {self.name}: {type(exc).__name__}: {exc}") from exc

    def _drop_connection(self) -> None:
        conns, self._conns = self._conns, []
        for conn in conns:
            if not conn.closed:
                conn.close()

    def _connection(self, index: int = 0) -> Connection:
        """The ``index``-th session, opened (and the table migrated) on first use."""
        if index < len(self._conns) and not self._conns[index].closed:
            return self._conns[index]
        if any(conn.closed for conn in self._conns):
            self._drop_connection()  # one lost: the others may be in any state, start over
        while len(self._conns) <= index:
            self._conns.append(self._connect())
        return self._conns[index]

    def _connect(self) -> Connection:
        conn = psycopg.connect(
            self._dsn,
            autocommit=True,
            connect_timeout=self.options.connect_timeout_s,
            application_name=f"profile-streams-connect-{self.name}"[:MAX_IDENTIFIER],
        )
        try:
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                (str(self.options.statement_timeout_ms),),
            )
            if not self._migrated:
                q.migrate(conn, self.options.db_schema, self.options.table)
                self._migrated = True
            conn.execute(q.statement(q.CREATE_STAGING, self._names))
        except BaseException:
            conn.close()
            raise
        return conn

    def _send_shares(self, shares: list[FoldedBatch]) -> list[Future[_Sent]]:
        """Each share of the customers is copied and merged in a session and transaction of its
        own, all at once (a thread per session, waiting on the server with the GIL released):
        the server works on every share while the worker consumes the next batch."""
        try:
            conns = [self._connection(index) for index in range(len(shares))]
        except BaseException:
            self._drop_connection()
            raise
        return [
            self._senders.submit(lambda c, s: (c, s, self._send(c, s)), conn, share)
            for conn, share in zip(conns, shares, strict=True)
        ]

    def _sent(self, sending: list[Future[_Sent]]) -> list[_Sent]:
        """Every share's copy, once all are done; after a failure the sessions may be
        mid-transaction or mid-pipeline: they are dropped."""
        wait_for(sending)
        try:
            return [future.result() for future in sending]
        except BaseException:
            self._drop_connection()
            raise

    def _collect(self, sent: list[_Sent]) -> list[Rejection]:
        try:
            rejected: list[Rejection] = []
            for conn, share, pipeline in sent:
                if pipeline is None or not self._committed(conn, pipeline):
                    rejected.extend(self._upsert_isolated(conn, share))
            return rejected
        except BaseException:
            self._drop_connection()
            raise

    def _send(self, conn: Connection, share: FoldedBatch) -> ExitStack | None:
        """Copy the share into the staging table, then send the merge and its COMMIT without
        waiting (the server commits on its own: a racing replica never waits on our Python).
        Returns the open pipeline, whose closing reads the results; None when the server
        refused a row (the transaction is rolled back)."""
        conn.execute("BEGIN")
        pipeline = ExitStack()
        try:
            with conn.cursor() as cursor, cursor.copy(self._copy_sql) as copy:
                self._write_rows(conn, share, copy)
            pipeline.enter_context(conn.pipeline())
            conn.execute(self._upsert_sql, self._priorities)
            conn.execute("COMMIT")
        except _ROW_ERRORS as exc:
            pipeline.__exit__(type(exc), exc, exc.__traceback__)
            self._refused(conn, exc)
            return None
        return pipeline

    def _write_rows(self, conn: Connection, share: FoldedBatch, copy: psycopg.Copy) -> None:
        """The share's rows into the COPY as they are made, so the server parses while they
        are encoded: from the Rust encoder a part at a time, unless the reference kernel is
        selected or the session is not in UTF-8 (the Rust text is); a part the Rust encoder
        does not write is the Python one's."""
        if not self._native_rows or conn.info.encoding != "utf-8":
            for row in self._unwired(share).rows():
                copy.write_row(row)
            return
        if share.text:
            copy.write(share.text)
        for part in share.parts(NATIVE_PART):
            text = self._copy_text(part)
            if text is None:
                for row in part.rows():
                    copy.write_row(row)
            else:
                copy.write(text)

    def _copy_text(self, part: FoldedBatch) -> bytes | None:
        """The rows as COPY text from the Rust encoder; None when a value is not one it writes
        exactly, or when it fails (a bug must not stop the sink: logged)."""
        try:
            return copy_rows(part.singles, part.profiles)
        except Exception:
            logger.exception("postgres sink native rows failed name=%s: Python encodes", self.name)
            return None

    def _committed(self, conn: Connection, pipeline: ExitStack) -> bool:
        """Wait for a sent merge; False when the server refused a row (rolled back)."""
        try:
            pipeline.close()
        except _ROW_ERRORS as exc:
            self._refused(conn, exc)
            return False
        return True

    def _refused(self, conn: Connection, exc: psycopg.Error) -> None:
        conn.execute("ROLLBACK")
        logger.warning(
            "postgres sink isolating refused rows name=%s sqlstate=%s", self.name, exc.sqlstate
        )

    def _upsert_isolated(self, conn: Connection, folded: FoldedBatch) -> list[Rejection]:
        """Row by row in savepoints; a refused customer row is retried record by record."""
        rejected: list[Rejection] = []
        folded = self._unwired(folded)
        with conn.transaction(), conn.cursor() as cursor:
            customers = folded.customers()
            for customer_id in sorted(customers):
                profile = customers[customer_id]
                if profile.is_empty() or self._try_row(cursor, customer_id, profile) is None:
                    continue
                for record in folded.records_of(customer_id):
                    single = fold([record], self.policy).customers()[customer_id]
                    error = self._try_row(cursor, customer_id, single)
                    if error is not None:
                        rejected.append(Rejection(record, REFUSED, error))
        return rejected

    def _try_row(
        self, cursor: psycopg.Cursor[TupleRow], customer_id: str, profile: Profile
    ) -> str | None:
        """Upsert one row in a savepoint; the server's reason when it refuses the row."""
        try:
            with cursor.connection.transaction():
                row = q.row_parameters(q.profile_row(customer_id, profile))
                cursor.execute(self._upsert_one_sql, {**row, **self._priorities})
        except _ROW_ERRORS as exc:
            return f"{exc.sqlstate}: {exc.diag.message_primary or type(exc).__name__}"
        return None
