"""The PostgreSQL sink against a real server: the table always ends equal to the processor's
state, whatever the order, duplicates, replays, batch boundaries or racing replicas."""

from __future__ import annotations

import itertools
import math
import random
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from streams._native import copy_rows
from streams.codecs.upserts import UpsertCodec
from streams.connect.config import build_sink, load_config
from streams.connect.errors import RetryableSinkError, SinkConfigError
from streams.connect.records import RawRecord, SinkRecord
from streams.connect.sinks.postgres import sink as postgres_module
from streams.connect.sinks.postgres import sql as q
from streams.connect.sinks.postgres.sink import REFUSED, PostgresSink, refusal
from streams.connect.sinks.postgres.sql import LATEST_VERSION, MIGRATIONS_TABLE
from streams.logs import mask_dsn
from streams.merge import MergePolicy, apply_event, join_profiles, rank_key, upsert_as_event
from streams.model import Op, Profile, PropertyState, Upsert, Value
from streams.settings import Settings
from tests.test_connect.conftest import PostgresSinkFactory

Query = Callable[..., list[tuple[Any, ...]]]
# customer -> (deleted_at, {name: (last_update, source, value's type, value's repr)})
State = dict[str, tuple[int | None, dict[str, tuple[int, str, str, str]]]]

CODEC = UpsertCodec("avro")
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "connectors" / "postgres.example.toml"
TOPIC = "profile-upserts"
CUSTOMERS = ["c-1", "c-2", "c-3"]
SOURCES = ["crm", "web", "import"]
NAMES = ["first_name", "city", "score"]
# Each example creates a table and writes several batches: keep the counts moderate.
DB_EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def record(upsert: Upsert, offset: int = 0) -> SinkRecord:
    return SinkRecord(TOPIC, 0, offset, upsert.customer_id.encode(), CODEC.encode(upsert), upsert)


def records(upserts: Iterable[Upsert]) -> list[SinkRecord]:
    return [record(upsert, offset) for offset, upsert in enumerate(upserts)]


def as_given(batch: list[SinkRecord], messages: bool) -> list[Any]:
    """The batch as the worker gives it (the messages, which the sink decodes: most rows go
    from their bytes to COPY text in Rust), or decoded."""
    return [RawRecord(*r[:5]) for r in batch] if messages else batch


# The sink takes messages from the worker and decoded records from other callers.
BOTH_FORMS = pytest.mark.parametrize("messages", [False, True], ids=["decoded", "messages"])


def change(customer: str, source: str = "crm", /, **properties: tuple[Value, int]) -> Upsert:
    return Upsert(
        customer_id=customer,
        op=Op.UPSERT,
        properties={
            name: PropertyState(value, ts, source) for name, (value, ts) in properties.items()
        },
        deleted_at=None,
        source=source,
        event_id=None,
        processed_at=0,
    )


def delete(customer: str, at: int, source: str = "crm") -> Upsert:
    return Upsert(customer, Op.DELETE, {}, at, source, None, 0)


def processor_profiles(upserts: Iterable[Upsert], policy: MergePolicy) -> dict[str, Profile]:
    """What the processor holds after these upserts, per customer."""
    profiles: dict[str, Profile] = {}
    for upsert in upserts:
        apply_event(
            profiles.setdefault(upsert.customer_id, Profile()), upsert_as_event(upsert), policy
        )
    return profiles


def processor_state(upserts: Iterable[Upsert], policy: MergePolicy) -> State:
    """What the processor holds after these upserts, in the table's terms."""
    profiles = processor_profiles(upserts, policy)
    return {
        customer: (
            profile.deleted_at,
            {name: _state(state) for name, state in profile.properties.items()},
        )
        for customer, profile in profiles.items()
        if not profile.is_empty()
    }


def _state(state: PropertyState) -> tuple[int, str, str, str]:
    # type and repr: equality alone would hide 1 vs 1.0 vs True and 0.0 vs -0.0.
    return state.last_update, state.source, type(state.value).__name__, repr(state.value)


def _entry(value: Value, last_update: int, source: str) -> list[Any]:
    """A property in version 2's form, which the SQL merge functions compare (and version 2
    stored): a float carries its sign, which also marks it as a float."""
    if type(value) is float:
        return [value, last_update, source, -1 if math.copysign(1.0, value) < 0 else 1]
    return [value, last_update, source]


def _stored(entry: list[Any]) -> tuple[int, str, str, str]:
    """A stored entry as ``_state``: jsonb keeps numbers as decimals (1e300 reads back as an
    int, -0.0 as 0.0), so a float is told by its fourth item, the sign."""
    value, last_update, source, *sign = entry
    if sign:
        value = math.copysign(float(value), sign[0])
    return _state(PropertyState(value, last_update, source))


def table_state(query: Query, sink: PostgresSink) -> State:
    """The table's rows, each property as the entry the merge compares."""
    dsn = make_conninfo(sink.options.dsn.get_secret_value(), client_encoding="UTF8")
    with psycopg.connect(dsn) as conn:
        rows = q.stored_entries(conn, sink.options.db_schema, sink.options.table)
    return {
        customer: (deleted_at, {name: _stored(e) for name, e in entries.items()})
        for customer, (deleted_at, entries) in rows.items()
    }


def write_all(sink: PostgresSink, batches: Iterable[Sequence[SinkRecord]]) -> None:
    for batch in batches:
        assert sink.write(batch).rejected == []


def split(items: list[Any], cuts: Iterable[int]) -> list[list[Any]]:
    bounds = sorted({0, len(items), *(cut % (len(items) + 1) for cut in cuts)})
    return [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# --- strategies -------------------------------------------------------------------------------

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=2),
    st.floats(min_value=-2, max_value=2, allow_nan=False),
    st.floats(allow_nan=False, allow_infinity=False),  # jsonb numeric round trips
    st.sampled_from(["a", "b", "", "é", "a\tb\\"]),
)
# A narrow time range so equal timestamps (ties), -1 (unknown) and deletes interleave.
timestamps = st.integers(min_value=-1, max_value=8)


@st.composite
def upserts(draw: st.DrawFn) -> Upsert:
    customer = draw(st.sampled_from(CUSTOMERS))
    source = draw(st.sampled_from(SOURCES))
    if draw(st.integers(0, 5)) == 0:
        return delete(customer, draw(st.integers(0, 8)), source)
    properties = draw(
        st.dictionaries(st.sampled_from(NAMES), st.tuples(values, timestamps), min_size=1)
    )
    return change(customer, source, **properties)


# --- properties (algebraic claims) --------------------------------------------------------------


@BOTH_FORMS
@DB_EXAMPLES
@given(
    history=st.lists(upserts(), max_size=16),
    rnd=st.randoms(use_true_random=False),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=5),
)
def test_any_order_duplicates_and_batching_end_in_the_processor_state(
    postgres_sink_factory: PostgresSinkFactory,
    postgres_query: Query,
    history,
    rnd,
    cuts,
    messages: bool,
):
    sink = postgres_sink_factory()
    delivered = history + rnd.sample(history, k=len(history) // 2)  # at-least-once: duplicates
    rnd.shuffle(delivered)
    write_all(sink, split(as_given(records(delivered), messages), cuts))
    expected = processor_state(history, sink.policy)
    assert table_state(postgres_query, sink) == expected
    write_all(sink, split(as_given(records(history), messages), cuts))  # a replay
    assert table_state(postgres_query, sink) == expected


@pytest.fixture
def postgres_sink(postgres_sink_factory: PostgresSinkFactory) -> PostgresSink:
    """One set-up sink on a fresh table, shared by the examples of a test."""
    return postgres_sink_factory()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(left=st.lists(upserts(), max_size=6), right=st.lists(upserts(), max_size=6))
def test_the_merge_statement_is_the_join_of_profiles(
    postgres_sink: PostgresSink, postgres_query: Query, left, right
):
    """A row merged into a stored one leaves the join of their profiles, and the row is
    rewritten exactly when that changes it (a replay or a stale row does not touch it)."""
    policy = postgres_sink.policy
    one, two = (_profile(history, policy) for history in (left, right))
    if one.is_empty():
        return
    customer = f"c-{uuid.uuid4().hex}"
    names = q.identifiers(postgres_sink.options.db_schema, postgres_sink.options.table)
    upsert = q.upsert_one_row(names)
    version = sql.SQL("SELECT xmin::text, deleted_at FROM {schema}.{table} WHERE customer_id = %s")
    priorities = q.priorities_json(policy.priorities)
    for profile in (one, two):
        row = q.row_parameters(q.profile_row(customer, profile))
        before = postgres_query(version.format(**names), (customer,))
        postgres_query(upsert, {**row, "priorities": priorities})
    after = postgres_query(version.format(**names), (customer,))
    joined = join_profiles(one, two, policy)
    stored = table_state(postgres_query, postgres_sink)[customer]
    expected = (joined.deleted_at, {n: _state(s) for n, s in joined.properties.items()})
    assert stored == expected
    unchanged = expected == (one.deleted_at, {n: _state(s) for n, s in one.properties.items()})
    assert (after == before) == unchanged


def _profile(history: list[Upsert], policy: MergePolicy) -> Profile:
    profile = Profile()  # customers are ignored: all of history is one profile
    for upsert in history:
        apply_event(profile, upsert_as_event(upsert), policy)
    return profile


def _row(profile: Profile) -> tuple[Any, ...]:
    return q.profile_row("c-1", profile)[1:]


@BOTH_FORMS
@DB_EXAMPLES
@given(history=st.lists(upserts(), min_size=1, max_size=24), seed=st.integers(0, 2**32))
def test_two_racing_replicas_end_in_the_merge_of_everything(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query, history, seed, messages
):
    first = postgres_sink_factory()
    second = postgres_sink_factory(table=first.options.table)
    rnd = random.Random(seed)
    batches = [
        split(
            as_given(records(rnd.sample(history, len(history))), messages),
            [rnd.randrange(25), rnd.randrange(25)],
        )
        for _ in range(2)
    ]
    try:
        race([(first, batches[0]), (second, batches[1])])
        assert table_state(postgres_query, first) == processor_state(history, first.policy)
    finally:  # each sink holds a connection per session: the examples would use up the server's
        first.close()
        second.close()


RACE_ATTEMPTS = 5


def race(work: list[tuple[PostgresSink, list[list[SinkRecord]]]]) -> None:
    """Each sink writes its batches from a thread of its own, all starting together; a
    transient failure (deadlock, serialization) is retried as the worker would."""
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(sink: PostgresSink, batches: list[list[SinkRecord]]) -> None:
        try:
            barrier.wait()
            for batch in batches:
                for _ in range(RACE_ATTEMPTS):
                    try:
                        assert sink.write(batch).rejected == []
                        break
                    except RetryableSinkError:
                        continue
                else:
                    raise AssertionError(f"batch still failing after {RACE_ATTEMPTS} attempts")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_three_racing_replicas_on_many_customers(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query
):
    rnd = random.Random(7)
    history = [
        change(
            f"c-{rnd.randrange(200)}",
            rnd.choice(SOURCES),
            **{rnd.choice(NAMES): (rnd.randrange(5), rnd.randrange(50))},
        )
        if rnd.random() > 0.05
        else delete(f"c-{rnd.randrange(200)}", rnd.randrange(50))
        for _ in range(3000)
    ]
    sinks = [postgres_sink_factory()]
    sinks += [postgres_sink_factory(table=sinks[0].options.table) for _ in range(2)]
    work = []
    for sink in sinks:
        order = records(rnd.sample(history, len(history)))
        work.append((sink, [order[i : i + 250] for i in range(0, len(order), 250)]))
    race(work)
    assert table_state(postgres_query, sinks[0]) == processor_state(history, sinks[0].policy)


# --- examples ---------------------------------------------------------------------------------


def test_replaying_the_same_batches_changes_nothing(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query
):
    sink = postgres_sink_factory()
    batches = [
        records([change("c-1", first_name=("Marian", 10), city=("Brno", 10))]),
        records([change("c-2", score=(3, 5)), delete("c-1", 5), change("c-1", city=("Wien", 11))]),
    ]
    write_all(sink, batches)
    before = _versions(postgres_query, sink)
    write_all(sink, batches)
    write_all(sink, batches[::-1])
    assert _versions(postgres_query, sink) == before  # a replay does not even touch the rows
    assert table_state(postgres_query, sink) == processor_state(
        [r.upsert for batch in batches for r in batch], sink.policy
    )


def _versions(query: Query, sink: PostgresSink) -> list[tuple[Any, ...]]:
    return query(
        sql.SQL("SELECT customer_id, xmin::text, updated_at FROM {}.{} ORDER BY 1").format(
            sql.Identifier(sink.options.db_schema), sql.Identifier(sink.options.table)
        )
    )


@BOTH_FORMS
def test_duplicates_within_a_batch(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query, messages: bool
):
    sink = postgres_sink_factory()
    history = [change("c-1", city=("Brno", 10)), change("c-1", city=("Praha", 9))]
    write_all(sink, [as_given(records(history * 3), messages)])
    assert table_state(postgres_query, sink) == processor_state(history, sink.policy)
    assert _values(postgres_query, sink) == {"c-1": {"city": "Brno"}}


def test_an_older_timestamp_never_overwrites_a_newer_one(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query
):
    sink = postgres_sink_factory()
    write_all(sink, [records([change("c-1", city=("Praha", 20), email=("new@x.org", 20))])])
    write_all(sink, [records([change("c-1", city=("Brno", 10), email=("newer@x.org", 30))])])
    assert _values(postgres_query, sink) == {"c-1": {"city": "Praha", "email": "newer@x.org"}}


def test_equal_timestamps_break_ties_like_the_processor(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query
):
    sink = postgres_sink_factory()  # source_priority: crm > web > the others
    write_all(sink, [records([change("c-1", "crm", city=("Brno", 10))])])
    write_all(sink, [records([change("c-1", "web", city=("Zlin", 10))])])
    write_all(sink, [records([change("c-1", "import", city=("Ostrava", 10), n=(2, 5))])])
    write_all(sink, [records([change("c-1", "import", n=(2.5, 5))])])
    write_all(sink, [records([change("c-1", "import", n=(True, 5))])])
    assert _values(postgres_query, sink) == {"c-1": {"city": "Brno", "n": 2.5}}


def test_deletes_honour_the_watermark(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query
):
    sink = postgres_sink_factory()
    first = [change("c-1", a=("a5", 5), b=("b15", 15)), change("c-2", a=("x", 1))]
    write_all(sink, [records(first)])
    write_all(sink, [records([delete("c-1", 10)])])
    assert _values(postgres_query, sink)["c-1"] == {"b": "b15"}
    # At or before the watermark is stale; after it starts a new profile.
    late = [change("c-1", a=("a8", 8), c=("c10", 10)), change("c-1", d=("d11", 11))]
    write_all(sink, [records(late)])
    assert _values(postgres_query, sink)["c-1"] == {"b": "b15", "d": "d11"}
    write_all(sink, [records([delete("c-1", 7)])])  # an older delete does not lower it
    assert _deleted_at(postgres_query, sink) == {"c-1": 10, "c-2": None}
    # A delete and older and newer writes in one batch, in any order.
    mixed = [change("c-2", a=("y", 19)), delete("c-2", 20), change("c-2", b=("z", 21))]
    write_all(sink, [records(mixed[::-1])])
    assert _values(postgres_query, sink)["c-2"] == {"b": "z"}
    write_all(sink, [records([delete("c-3", 4)])])  # the watermark of an unknown customer
    write_all(sink, [records([change("c-3", a=("old", 3))])])
    assert _values(postgres_query, sink)["c-3"] == {}
    assert _deleted_at(postgres_query, sink) == {"c-1": 10, "c-2": 20, "c-3": 4}


def _deleted_at(query: Query, sink: PostgresSink) -> dict[str, int | None]:
    return {customer: state[0] for customer, state in table_state(query, sink).items()}


def _values(query: Query, sink: PostgresSink) -> dict[str, dict[str, Any]]:
    """The documented plain-values view: null (unset) values are left out."""
    rows = query(
        sql.SQL("SELECT customer_id, properties FROM {}.{}").format(
            sql.Identifier(sink.options.db_schema),
            sql.Identifier(f"{sink.options.table}_values"),
        )
    )
    return dict(rows)


def test_null_unsets_a_property(postgres_sink_factory: PostgresSinkFactory, postgres_query: Query):
    sink = postgres_sink_factory()
    write_all(sink, [records([change("c-1", city=("Brno", 1), name=("M", 1))])])
    write_all(sink, [records([change("c-1", city=(None, 2))])])
    write_all(sink, [records([change("c-1", city=("Praha", 1))])])  # older than the unset
    assert _values(postgres_query, sink) == {"c-1": {"name": "M"}}
    assert table_state(postgres_query, sink)["c-1"][1]["city"][0] == 2


@BOTH_FORMS
def test_records_postgres_cannot_store_are_rejected_and_the_rest_written(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query, messages: bool
):
    sink = postgres_sink_factory()
    good = [change("c-1", name=("Marian", 5)), change("c-2", city=("Zlin", 5))]
    bad = [
        change("c-1", city=("Br\x00no", 5)),
        change("c-1", score=(float("nan"), 5)),
        change("c-2", **{"ci\x00ty": ("Brno", 5)}),
        change("c-\x00", city=("Brno", 5)),
    ]
    result = sink.write(as_given(records([good[0], *bad, good[1]]), messages))
    assert [(r.record.offset, r.reason) for r in result.rejected] == [
        (1, "nul_character"),
        (2, "non_finite_float"),
        (3, "nul_character"),
        (4, "nul_character"),
    ]
    assert table_state(postgres_query, sink) == processor_state(good, sink.policy)


@BOTH_FORMS
def test_a_row_the_server_refuses_is_isolated(
    postgres_sink_factory: PostgresSinkFactory,
    postgres_query: Query,
    monkeypatch: pytest.MonkeyPatch,
    messages: bool,
):
    monkeypatch.setattr(postgres_module, "refusal", lambda upsert: None)  # let it reach the server
    sink = postgres_sink_factory()
    good = [change("c-1", name=("Marian", 5)), change("c-2", city=("Zlin", 5))]
    batch = records([good[0], change("c-1", city=("Br\x00no", 6)), good[1]])
    result = sink.write(as_given(batch, messages))
    assert [(r.record.offset, r.reason) for r in result.rejected] == [(1, REFUSED)]
    assert result.rejected[0].detail.startswith("22P05")  # untranslatable character
    assert table_state(postgres_query, sink) == processor_state(good, sink.policy)


@pytest.mark.parametrize("sessions", [1, 2])
def test_a_row_the_staging_table_refuses_is_isolated(
    postgres_sink_factory: PostgresSinkFactory,
    postgres_query: Query,
    monkeypatch: pytest.MonkeyPatch,
    sessions: int,
):
    monkeypatch.setattr(postgres_module, "refusal", lambda upsert: None)  # let it reach the server
    sink = postgres_sink_factory(sessions=sessions)
    first = [change("c-1", city=("Brno", 5)), change("c-2", city=("Zlin", 5))]
    write_all(sink, [records(first)])
    # Its timestamp is not an integer: the staging table's bigint refuses it.
    too_late = change("c-1", city=("Praha", 5.5))  # type: ignore[arg-type]
    good = [change("c-2", city=("Olomouc", 6)), change("c-3", city=("Jihlava", 1))]
    # (The avro codec refuses it too: the record carries no bytes, only the upsert.)
    result = sink.write([SinkRecord(TOPIC, 0, 9, b"c-1", b"", too_late), *records(good)])
    assert [(r.record.offset, r.reason) for r in result.rejected] == [(9, REFUSED)]
    assert result.rejected[0].detail.startswith("22P02")  # invalid input syntax for bigint
    assert table_state(postgres_query, sink) == processor_state(first + good, sink.policy)
    write_all(sink, [records(good)])  # the sessions are usable again


class _RowsSpy:
    """Stands in for the Rust row encoder: what it answered, or the failure it fakes."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.answers: list[bytes | None] = []

    def __call__(self, singles: Any, profiles: Any) -> bytes | None:
        if self.fail:
            raise RuntimeError("a bug")
        answer = copy_rows(singles, profiles)
        self.answers.append(answer)
        return answer


ODD_HISTORY = [
    change("tab\there", "web", note=("a\tb\\c\nd\re", 5), score=(-0.0, 5), big=(2**63 - 1, 5)),
    change("back\\slash", "import", city=("Brno 😀", 7), tiny=(5e-324, 7), flag=(True, 7)),
    change("c-1", "crm", name=("Ann", 3), gone=(None, 3)),
    change("c-1", "web", name=("Bob", 3), ratio=(1e-7, 4), big=(1e16, 4)),
    delete("c-2", 9),
    change("c-2", "crm", city=("Praha", 8), name=("\\N", 10)),
]


@pytest.mark.parametrize("kernel", ["native", "python"])
@pytest.mark.parametrize("sessions", [1, 2])
def test_the_kernel_setting_selects_the_row_encoder(
    postgres_sink_factory: PostgresSinkFactory,
    postgres_query: Query,
    monkeypatch: pytest.MonkeyPatch,
    kernel: Literal["native", "python"],
    sessions: int,
):
    spy = _RowsSpy()
    monkeypatch.setattr(postgres_module, "copy_rows", spy)
    settings = Settings(source_priority=["crm", "web"], kernel=kernel)
    sink = postgres_sink_factory(settings, sessions=sessions)
    write_all(sink, [records(ODD_HISTORY)])
    assert table_state(postgres_query, sink) == processor_state(ODD_HISTORY, sink.policy)
    if kernel == "native":
        assert all(isinstance(answer, bytes) for answer in spy.answers)
        assert sum(answer.count(b"\n") for answer in spy.answers if answer) == 4  # customers
    else:
        assert spy.answers == []


class _Int(int):
    """An int the Rust encoder leaves to Python (a subclass), orjson writes as an int."""


def test_a_part_the_rust_encoder_does_not_write_is_written_by_python(
    postgres_sink_factory: PostgresSinkFactory,
    postgres_query: Query,
    monkeypatch: pytest.MonkeyPatch,
):
    spy = _RowsSpy()
    monkeypatch.setattr(postgres_module, "copy_rows", spy)
    monkeypatch.setattr(postgres_module, "NATIVE_PART", 1)
    sink = postgres_sink_factory(Settings(kernel="native"), sessions=1)
    plain = [change("c-1", score=(1, 5)), change("c-2", score=(5, 5)), change("c-3", score=(3, 5))]
    odd = change("c-2", score=(_Int(5), 5))  # no Avro codec takes it: the record has no bytes
    write_all(
        sink,
        [[record(plain[0], 0), SinkRecord(TOPIC, 0, 1, b"c-2", b"", odd), record(plain[2], 2)]],
    )
    assert [answer is None for answer in spy.answers] == [False, True, False]
    assert table_state(postgres_query, sink) == processor_state(plain, sink.policy)


def test_a_failing_native_encoder_leaves_the_rows_to_python(
    postgres_sink_factory: PostgresSinkFactory,
    postgres_query: Query,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    monkeypatch.setattr(postgres_module, "copy_rows", _RowsSpy(fail=True))
    sink = postgres_sink_factory(Settings(kernel="native"))
    write_all(sink, [records(ODD_HISTORY)])
    assert "native rows failed" in caplog.text
    assert table_state(postgres_query, sink) == processor_state(ODD_HISTORY, sink.policy)


def test_a_session_not_in_utf8_gets_rows_from_python(
    postgres_sink_factory: PostgresSinkFactory,
    postgres_query: Query,
    postgres_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
):
    """The Rust rows are UTF-8; psycopg encodes the Python ones in the session's encoding."""
    spy = _RowsSpy()
    monkeypatch.setattr(postgres_module, "copy_rows", spy)
    dsn = make_conninfo(postgres_dsn, client_encoding="LATIN1")
    sink = postgres_sink_factory(Settings(kernel="native"), dsn=dsn)
    history = [change("zürich", city=("Zürich", 5)), change("c-2", note=("tab\tand é", 6))]
    write_all(sink, [records(history)])
    assert spy.answers == []
    assert table_state(postgres_query, sink) == processor_state(history, sink.policy)


def test_refusal_reasons():
    assert refusal(change("c-1", a=("\ud800", 1))) == "invalid_unicode"
    assert refusal(change("c-1", a=(2**63, 1))) == "integer_out_of_range"
    assert refusal(change("c-1", a=(1, 2**63))) == "timestamp_out_of_range"
    assert refusal(change("c-1", a=(float("inf"), 1))) == "non_finite_float"
    assert refusal(delete("c-1", -(2**63) - 1)) == "timestamp_out_of_range"
    assert refusal(change("c-1", a=("Žluťoučký kůň", 1), b=(-(2**63), -1))) is None


def test_a_lost_connection_is_retryable_and_the_next_write_reconnects(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query
):
    sink = postgres_sink_factory(name="pg-lost-connection")
    write_all(sink, [records([change("c-1", city=("Brno", 1))])])
    killed = postgres_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        ("profile-streams-connect-pg-lost-connection",),
    )
    assert killed == [(True,)]
    batch = records([change("c-1", city=("Praha", 2))])
    with pytest.raises(RetryableSinkError):
        sink.write(batch)
    write_all(sink, [batch])
    assert _values(postgres_query, sink) == {"c-1": {"city": "Praha"}}


def test_an_unreachable_server_is_retryable():
    sink = PostgresSink(
        {"dsn": "host=127.0.0.1 port=1 user=x password=hunter2", "connect_timeout_s": 1},
        name="pg-down",
        settings=Settings(),
    )
    with pytest.raises(RetryableSinkError) as caught:
        sink.setup()
    assert "hunter2" not in str(caught.value)


def test_migrations_are_idempotent(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query
):
    sink = postgres_sink_factory()
    for _ in range(2):
        again = postgres_sink_factory(table=sink.options.table)
        write_all(again, [records([change("c-1", city=("Brno", 1))])])
    rows = postgres_query(
        sql.SQL("SELECT target, version FROM {}.{} ORDER BY version").format(
            sql.Identifier(sink.options.db_schema), sql.Identifier(MIGRATIONS_TABLE)
        )
    )
    assert rows == [(sink.options.table, v) for v in range(1, LATEST_VERSION + 1)]


def test_replicas_starting_together_migrate_once(
    postgres_dsn: str, postgres_schema: str, postgres_settings: Settings, postgres_query: Query
):
    options = {"dsn": postgres_dsn, "schema": postgres_schema, "table": "together"}
    sinks = [
        PostgresSink(options, name=f"pg-{index}", settings=postgres_settings) for index in range(4)
    ]
    with ThreadPoolExecutor(len(sinks)) as pool:
        list(pool.map(PostgresSink.setup, sinks))  # re-raises a failed setup
    try:
        for sink in sinks:
            write_all(sink, [records([change("c-1", city=("Brno", 1))])])
    finally:
        for sink in sinks:
            sink.close()
    rows = postgres_query(
        sql.SQL("SELECT target, version FROM {}.{} ORDER BY version").format(
            sql.Identifier(postgres_schema), sql.Identifier(MIGRATIONS_TABLE)
        )
    )
    assert rows == [("together", v) for v in range(1, LATEST_VERSION + 1)]


def test_a_missing_schema_is_created(
    postgres_sink_factory: PostgresSinkFactory, postgres_query: Query, postgres_schema: str
):
    schema = f"{postgres_schema}_new"
    try:
        sink = postgres_sink_factory(schema=schema)
        write_all(sink, [records([change("c-1", city=("Brno", 1))])])
        assert _values(postgres_query, sink) == {"c-1": {"city": "Brno"}}
    finally:
        postgres_query(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --- configuration (no server needed) ---------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"dsn": "host=x", "tabel": "profiles"},
        {"dsn": "host=x", "table": "profiles; DROP TABLE x"},
        {"dsn": "host=x", "schema": "1bad"},
        {"dsn": "host=x", "table": "t" * 60},
        {"dsn": "host=x", "connect_timeout_s": 0},
        {"dsn": "host=x", "sessions": 0},
    ],
)
def test_invalid_options_are_refused_before_any_io(options: dict[str, Any]):
    with pytest.raises(SinkConfigError):
        PostgresSink(options, name="pg", settings=Settings())


def test_the_password_never_shows():
    secret = "s3cr3t-Pa55"
    with pytest.raises(SinkConfigError) as caught:
        PostgresSink({"dsn": f"host=x password={secret} =broken"}, name="pg", settings=Settings())
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is None
    with pytest.raises(SinkConfigError) as caught:
        PostgresSink({"dsn": secret, "passwd": secret}, name="pg", settings=Settings())
    assert secret not in str(caught.value)
    sink = PostgresSink(
        {"dsn": f"postgresql://app:{secret}@db.example:5432/crm"}, name="pg", settings=Settings()
    )
    assert secret not in repr(sink)
    assert secret not in repr(sink.options)
    assert sink.masked_dsn == "postgresql://app:***@db.example:5432/crm"
    masked = conninfo_to_dict(mask_dsn(f"host=db password={secret} dbname=crm"))
    assert masked == {"host": "db", "password": "***", "dbname": "crm"}


def test_the_example_config_builds_a_sink(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STREAMS_POSTGRES_DSN", "postgresql://app:s3cr3t@db.example/crm")
    config = load_config(EXAMPLE_CONFIG)
    sink = build_sink(config, Settings())
    assert isinstance(sink, PostgresSink)
    assert sink.target == "public.profiles"
    assert "s3cr3t" not in repr(sink)


@given(history=st.lists(upserts(), max_size=16))
def test_folded_rows_are_the_rows_of_the_processor_state(history: list[Upsert]):
    """A customer's only upsert is encoded without its profile; the rows equal the encoded
    profiles the processor's merge makes of the batch, whatever mixes singles and folds."""
    policy = MergePolicy({"crm": 2, "web": 1})
    folded = postgres_module.fold(records(history), policy)
    profiles = processor_profiles(history, policy)
    expected = {
        q.profile_row(customer, profile)
        for customer, profile in profiles.items()
        if not profile.is_empty()
    }
    assert set(folded.rows()) == expected
    assert folded.customers() == profiles


@given(history=st.lists(upserts(), max_size=16), count=st.integers(1, 4))
def test_shares_deal_each_customer_to_exactly_one_session(history: list[Upsert], count: int):
    folded = postgres_module.fold(records(history), MergePolicy())
    shares = folded.shares(count)
    assert len(shares) == min(count, len(folded))
    assert all(shares)
    dealt = [customer for share in shares for customer in share.customers()]
    assert sorted(dealt) == sorted(folded.customers())
    assert max(map(len, shares), default=0) - min(map(len, shares), default=0) <= 1
    merged: dict[str, Profile] = {}
    for share in shares:
        merged.update(share.customers())
    assert merged == folded.customers()


@given(history=st.lists(upserts(), max_size=16), size=st.integers(1, 4))
def test_parts_hold_the_rows_in_order(history: list[Upsert], size: int):
    folded = postgres_module.fold(records(history), MergePolicy())
    parts = list(folded.parts(size))
    assert all(0 < len(part) <= size for part in parts)
    assert [row for part in parts for row in part.rows()] == list(folded.rows())


# --- the stored layout ------------------------------------------------------------------------

every_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 1, 10**16, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 1e16, -1e-7, 5e-324]),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=6),
    st.sampled_from(["", "a", "a\tb\\", "é", "\U0001f600", "Z", "z"]),
)
TIE_SOURCES = ["crm", "web", "import", "", "é", "CRM"]
TIE_POLICY = MergePolicy({"crm": 2, "web": 1, "import": -1})


@st.composite
def states(draw: st.DrawFn) -> PropertyState:
    return PropertyState(
        draw(every_value),
        draw(st.integers(min_value=-1, max_value=2)),
        draw(st.sampled_from(TIE_SOURCES)),
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(pairs=st.lists(st.tuples(states(), states()), min_size=1, max_size=20))
def test_the_sql_winner_is_the_processor_winner(
    postgres_sink: PostgresSink, postgres_query: Query, pairs
):
    """The stored entries compare in SQL exactly like ``MergePolicy.rank``: ties on every kind
    of value, float signs, priorities (negative too), sources; equal writes never win."""
    function = sql.SQL("SELECT {}.{}(%s::jsonb, %s::jsonb, %s::jsonb)").format(
        sql.Identifier(postgres_sink.options.db_schema), sql.Identifier(q.BEATS_FUNCTION)
    )
    priorities = q.priorities_json(TIE_POLICY.priorities)
    for a, b in pairs:
        for entry, stored in ((a, b), (b, a), (a, a)):
            encoded = [
                orjson.dumps(_entry(state.value, state.last_update, state.source)).decode()
                for state in (entry, stored)
            ]
            [(wins,)] = postgres_query(function, (*encoded, priorities))
            assert wins == (TIE_POLICY.rank(entry) > TIE_POLICY.rank(stored)), (entry, stored)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(properties=st.dictionaries(st.sampled_from([*NAMES, "é", "a b"]), states(), max_size=6))
def test_a_row_reads_back_as_its_entries_and_packs_back_to_them(
    postgres_sink: PostgresSink, postgres_query: Query, properties: dict[str, PropertyState]
):
    """The stored row loses nothing the merge compares: every value's kind (1e+16 and -0.0
    included), timestamp and source; and the server's own packing of entries (after a merge)
    reads back the same."""
    schema = sql.Identifier(postgres_sink.options.db_schema)
    names = {
        "schema": schema,
        "entries": sql.Identifier(q.ENTRIES_FUNCTION),
        "pack": sql.Identifier(q.PACK_FUNCTION),
    }
    read = sql.SQL(
        "SELECT e, {schema}.{entries}(p.properties, p.stamps, p.last_update, p.source)"
        " FROM (SELECT {schema}.{entries}(%s::jsonb, %s::jsonb, %s::bigint, %s::text) AS e) AS x,"
        " {schema}.{pack}(x.e) AS p"
    ).format(**names)
    _, values, last_update, source, stamps, _ = q.profile_row("c-1", Profile(properties))
    [(entries, repacked)] = postgres_query(read, (values, stamps, last_update, source))
    expected = {name: _state(state) for name, state in properties.items()}
    assert {name: _stored(e) for name, e in entries.items()} == expected
    assert repacked == entries


@pytest.mark.parametrize("version", [1, 2])
def test_older_tables_are_rewritten_to_the_latest_version(
    postgres_dsn: str,
    postgres_schema: str,
    postgres_sink_factory: PostgresSinkFactory,
    postgres_query: Query,
    version: int,
):
    """A table written by an older version (1: {"v", "t", "k"} entries; 2: [value, t, source]
    entries) reads the same after the upgrade, and merges on from there like the processor."""
    policy = MergePolicy({"crm": 2, "web": 1})
    history = [
        change("c-1", "crm", first_name=("Marian", 10), score=(-0.0, 10), city=(None, 3)),
        change("c-1", "web", score=(1e16, 11), active=(True, 9), ltv=(-2.5, 9)),
        change("c-2", "", city=("Brno\t\\é\U0001f600", 5), count=(10**16, 5), n=(-(2**63), 4)),
        change("c-3", "é", zero=(0.0, 1), one=(1, 1), text=("", 1)),
        delete("c-4", 7),
    ]
    table = f"upgraded_from_{version}"
    rows = _old_rows(history, policy, version)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        q.migrate(conn, postgres_schema, table, up_to=version)
        for customer, (deleted_at, profile) in rows.items():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.{} (customer_id, properties, deleted_at) VALUES (%s, %s, %s)"
                ).format(sql.Identifier(postgres_schema), sql.Identifier(table)),
                (customer, Jsonb(profile), deleted_at),
            )
    sink = postgres_sink_factory(table=table, settings=Settings(source_priority=["crm", "web"]))
    assert table_state(postgres_query, sink) == processor_state(history, sink.policy)
    later = [change("c-1", "import", score=(7, 11), first_name=("Ann", 12)), delete("c-2", 5)]
    write_all(sink, [records(later)])
    assert table_state(postgres_query, sink) == processor_state(history + later, sink.policy)
    assert _values(postgres_query, sink)["c-3"] == {"zero": 0.0, "one": 1, "text": ""}


def _old_rows(
    history: list[Upsert], policy: MergePolicy, version: int
) -> dict[str, tuple[int | None, dict[str, Any]]]:
    """What an older version stored for this history: 1, {"v", "t", "k": hex rank key at
    t=0}; 2, [value, t, source(, a float's sign)]."""
    profiles = processor_profiles(history, policy)
    return {
        customer: (
            profile.deleted_at,
            {
                name: {
                    "v": state.value,
                    "t": state.last_update,
                    "k": rank_key(state._replace(last_update=0), policy).hex(),
                }
                if version == 1
                else _entry(state.value, state.last_update, state.source)
                for name, state in profile.properties.items()
            },
        )
        for customer, profile in profiles.items()
        if not profile.is_empty()
    }
