"""The hand-written upsert writer produces exactly fastavro's bytes for the same schema."""

from __future__ import annotations

import io

import fastavro
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.codecs.avro import load_registry
from streams.codecs.upserts import UpsertCodec, upsert_record
from streams.model import Op, PropertyState, Upsert

I64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
VALUES = st.one_of(st.none(), st.booleans(), I64, st.floats(allow_nan=False), st.text())


@st.composite
def upserts(draw: st.DrawFn) -> Upsert:
    source = draw(st.text(min_size=1))
    op = draw(st.sampled_from(list(Op)))
    names = draw(st.lists(st.text(), max_size=4, unique=True))
    return Upsert(
        customer_id=draw(st.text()),
        op=op,
        properties={name: PropertyState(draw(VALUES), draw(I64), source) for name in names},
        deleted_at=draw(st.none() | I64),
        source=source,
        event_id=draw(st.none() | st.text()),
        processed_at=draw(I64),
    )


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upserts())
def test_writer_matches_fastavro_byte_for_byte(upsert):
    registry = load_registry("profile_upsert")
    body = io.BytesIO()
    fastavro.schemaless_writer(body, registry.current.parsed, upsert_record(upsert))
    assert UpsertCodec("avro").encode(upsert) == registry.current.header + body.getvalue()
