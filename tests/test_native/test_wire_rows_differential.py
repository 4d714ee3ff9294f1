"""The PostgreSQL sink's rows straight from the messages (``UpsertDecoder.copy_text``, in Rust)
against the reference (decode every message, ``fold``, ``FoldedBatch.rows``): for generated
batches the same rows, byte for byte, each customer in exactly one share, and the same
rejections; a batch holding a message the crate does not read is decoded in Python whole."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from streams.codecs.upserts import UpsertCodec
from streams.connect.records import RawRecord, SinkRecord
from streams.connect.sinks.postgres.sink import FoldedBatch, PostgresSink, fold
from streams.connect.sinks.postgres.sql import Row
from streams.model import Op, PropertyState, Upsert
from streams.settings import Settings
from tests.test_native.test_copy_rows_differential import read_copy_text

CODECS = {"avro": UpsertCodec("avro"), "json": UpsertCodec("json")}
CUSTOMERS = [f"c-{n}" for n in range(12)] + ["tab\there", "back\\slash", "😀", "c\x00nul"]
TEXTS = ["Brno", "", "é", 'q"uote', "a\\b", "t\tab\nnl", "\x00", "😀", "x" * 40]

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e16, -1e16, 1.5e17, 9999999999999998.0, 5e-324]),
    st.sampled_from(TEXTS),
)


@st.composite
def upserts(draw: st.DrawFn) -> Upsert:
    customer = draw(st.sampled_from(CUSTOMERS))
    source = draw(st.sampled_from(["crm", "web", "s\x00"]) | st.just("crm"))
    at = draw(st.integers(-1, 20))
    if draw(st.integers(0, 7)) == 0:
        return Upsert(customer, Op.DELETE, {}, at, source, None, 0)
    names = st.sampled_from(["city", "é", "n\x00", "score", "a\\b"])
    # Per-property times: rows with stamps and ties for the common one.
    last_updates = st.sampled_from([at, at + 1, at - 3])
    properties = draw(
        st.dictionaries(names, st.builds(PropertyState, values, last_updates, st.just(source)))
    )
    return Upsert(customer, Op.UPSERT, properties, None, source, draw(st.none() | st.just("e")), 0)


def _sink(sessions: int) -> PostgresSink:
    options = {"dsn": "postgresql://u@localhost/db", "sessions": sessions}
    return PostgresSink(options, name="wire", settings=Settings())


def _rows(shares: list[FoldedBatch]) -> list[Row]:
    rows = []
    for share in shares:
        rows += read_copy_text(share.text)
        rows += share.rows()
    return sorted(rows)


def _customers(share: FoldedBatch, codec: UpsertCodec) -> set[str]:
    wired = {codec.decode(message.value).customer_id for message in share.wired}
    return wired | set(share.singles) | set(share.profiles)


@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    history=st.lists(upserts(), max_size=24),
    fmt=st.sampled_from(["avro", "json"]),
    sessions=st.integers(1, 3),
    garbage=st.none() | st.integers(0, 24),
)
def test_rows_from_the_messages_are_the_reference_rows(
    history: list[Upsert], fmt: str, sessions: int, garbage: int | None
) -> None:
    codec = CODECS[fmt]
    messages = [
        RawRecord("profile-upserts", 0, offset, None, codec.encode(upsert))
        for offset, upsert in enumerate(history)
    ]
    if garbage is not None:  # a message no reader takes: the batch is decoded in Python
        messages.insert(min(garbage, len(messages)), RawRecord("t", 0, 99, None, b"\x00garbage"))
    sink = _sink(sessions)
    shares, rejected = sink._shares(messages)

    decoded: list[Any] = [
        SinkRecord(*message, codec.decode(message.value))
        for message in messages
        if message.offset != 99
    ]
    reference = fold(decoded, sink.policy)
    expected_rejected = [(99, "bad_upsert")] if garbage is not None else []
    expected_rejected += [(r.record.offset, r.reason) for r in reference.rejected]
    assert [(r.record.offset, r.reason) for r in rejected] == expected_rejected
    assert _rows(shares) == sorted(reference.rows())

    assert len(shares) <= sessions
    dealt = [_customers(share, codec) for share in shares]
    assert sum(map(len, dealt)) == len(set().union(*dealt))  # one share per customer


def test_customers_with_one_plain_upsert_are_written_by_the_crate() -> None:
    codec = CODECS["avro"]
    plain = [
        Upsert(f"c-{n}", Op.UPSERT, {"city": PropertyState("Brno", 5, "crm")}, None, "crm", None, 0)
        for n in range(4)
    ]
    repeated = plain[0]._replace(properties={"city": PropertyState("Zlin", 6, "crm")})
    deleted = Upsert("c-9", Op.DELETE, {}, 7, "crm", None, 0)
    batch = [*plain, repeated, deleted]
    messages = [RawRecord("t", 0, n, None, codec.encode(u)) for n, u in enumerate(batch)]
    shares, rejected = _sink(2)._shares(messages)
    assert rejected == []
    wired = sorted(message.offset for share in shares for message in share.wired)
    assert wired == [1, 2, 3]
    folded = {customer for share in shares for customer in [*share.singles, *share.profiles]}
    assert folded == {"c-0", "c-9"}
