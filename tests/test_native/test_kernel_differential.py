"""The Rust kernel against the Python reference (processor/batch.py): for generated batches
and stored states, the same outputs (upsert, stale and dead-letter records byte for byte,
but for the dead letters' free-text detail), the same states, counts and offsets."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from streams.errors import InvalidEventError
from streams.kafka.output_records import OutputRecord
from streams.processor.batch import BatchProcessor
from streams.processor.kernel import NativeBatchProcessor
from streams.processor.records import BatchResult, InputRecord
from streams.settings import Settings
from tests.test_native.cases import NOW_MS, records, stored_states

PARTITIONS = 4


def _settings(**overrides: Any) -> Settings:
    return Settings(partitions=PARTITIONS, source_priority=["crm", "web"], **overrides)


configurations = st.builds(
    lambda fmt, small, few, skew, state: _settings(
        output_format=fmt,
        max_event_bytes=300 if small else 256 * 1024,
        max_properties=3 if few else 1000,
        max_clock_skew_seconds=skew,
        max_state_bytes=state,
    ),
    st.sampled_from(["avro", "json"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0.0, 300.0]),
    st.sampled_from([1024, 900_000]),
)


def _without_detail(output: OutputRecord) -> OutputRecord:
    if not output.headers:
        return output
    headers = [(n, b"" if n == "dlq.detail" else v) for n, v in output.headers]
    return output._replace(headers=headers)


def run(
    processor_class: type[BatchProcessor] | type[NativeBatchProcessor],
    settings: Settings,
    batch: list[InputRecord],
    stored: dict[bytes, bytes],
    parked: dict[tuple[int, int], InvalidEventError] | None = None,
) -> BatchResult:
    def load(_partition: int, keys: list[bytes]) -> list[bytes | None]:
        return [stored.get(key) for key in keys]

    return processor_class(settings, load, lambda: NOW_MS).process(batch, parked)


def assert_same(expected: BatchResult, actual: BatchResult) -> None:
    assert [_without_detail(o) for o in actual.outputs] == [
        _without_detail(o) for o in expected.outputs
    ]
    assert actual.states == expected.states
    assert list(actual.states) == list(expected.states)
    for partition, states in expected.states.items():
        assert list(actual.states[partition]) == list(states)
    assert actual.counts == expected.counts
    assert actual.next_offsets == expected.next_offsets
    assert dict(actual.contributors) == dict(expected.contributors)


@hypothesis_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settings=configurations, batch=records(PARTITIONS), stored=stored_states())
def test_the_kernel_equals_the_reference(
    settings: Settings, batch: list[InputRecord], stored: dict[bytes, bytes]
) -> None:
    expected = run(BatchProcessor, settings, batch, stored)
    actual = run(NativeBatchProcessor, settings, batch, stored)
    assert_same(expected, actual)


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    settings=configurations,
    batches=st.lists(records(PARTITIONS), min_size=2, max_size=4),
    stored=stored_states(),
)
def test_one_kernel_equals_the_reference_batch_after_batch(
    settings: Settings, batches: list[list[InputRecord]], stored: dict[bytes, bytes]
) -> None:
    # The kernel writes a batch's outputs into the buffer the batch before left it.
    def load(_partition: int, keys: list[bytes]) -> list[bytes | None]:
        return [stored.get(key) for key in keys]

    reference = BatchProcessor(settings, load, lambda: NOW_MS)
    kernel = NativeBatchProcessor(settings, load, lambda: NOW_MS)
    for batch in batches:
        assert_same(reference.process(batch), kernel.process(batch))


@hypothesis_settings(max_examples=100, deadline=None)
@given(batch=records(PARTITIONS), stored=stored_states(), data=st.data())
def test_parked_records_are_dead_lettered_alike(
    batch: list[InputRecord], stored: dict[bytes, bytes], data: st.DataObject
) -> None:
    chosen = data.draw(st.lists(st.sampled_from(batch), unique=True)) if batch else []
    parked = {
        (r.partition, r.offset): InvalidEventError("output_too_large", "refused") for r in chosen
    }
    settings = _settings()
    assert_same(
        run(BatchProcessor, settings, batch, stored, parked),
        run(NativeBatchProcessor, settings, batch, stored, parked),
    )


@pytest.mark.parametrize("fmt", ["avro", "json"])
def test_a_realistic_batch_is_equal_and_applied(fmt: str) -> None:
    """Not vacuous: a plain batch of valid events is applied by both, with upserts."""
    import orjson

    from streams.kafka.partitioner import partition_for
    from tests.test_native.cases import T0

    batch = []
    for offset in range(200):
        customer = f"c-{offset % 37}"
        key = customer.encode()
        event = {
            "customer_id": customer,
            "source": "web",
            "update_timestamp": T0 + offset % 50,
            "properties": {"n": offset, "f": offset / 7, "s": f"v{offset}"},
        }
        batch.append(
            InputRecord(partition_for(key, PARTITIONS), offset, key, orjson.dumps(event), 0)
        )
    settings = _settings(output_format=fmt)
    expected = run(BatchProcessor, settings, batch, {})
    actual = run(NativeBatchProcessor, settings, batch, {})
    assert expected.counts.applied > 50
    assert expected.counts.stale_events > 0
    assert_same(expected, actual)


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    writes=st.lists(
        st.tuples(st.sampled_from(["c-1", "c-2"]), st.integers(0, 6), st.integers(0, 20)),
        max_size=14,
    ),
    fmt=st.sampled_from(["avro", "json"]),
)
def test_states_at_the_size_limit_alike(writes: list[tuple[str, int, int]], fmt: str) -> None:
    """Events that grow a profile past max_state_bytes: the second, guarded pass."""
    import orjson

    from streams.kafka.partitioner import partition_for
    from tests.test_native.cases import T0

    batch = []
    for offset, (customer, name, second) in enumerate(writes):
        key = customer.encode()
        event = {
            "customer_id": customer,
            "source": "web",
            "update_timestamp": T0 + second,
            "properties": {f"p{name}": "x" * 300},
        }
        batch.append(
            InputRecord(partition_for(key, PARTITIONS), offset, key, orjson.dumps(event), 0)
        )
    settings = _settings(output_format=fmt, max_state_bytes=1024)
    expected = run(BatchProcessor, settings, batch, {})
    assert_same(expected, run(NativeBatchProcessor, settings, batch, {}))


@pytest.mark.parametrize("count", [1, 15, 16, 17, 40])
def test_events_of_many_properties_and_a_repeated_name_alike(count: int) -> None:
    # The kernel keeps a document's objects in a vector up to 16 entries and hashes larger
    # ones: both sides of that line, and a repeated name (its first place, its last value).
    import orjson

    from streams.kafka.partitioner import partition_for

    properties = ",".join(f'"p{i}":{i}' for i in range(count))
    batch = []
    for offset, customer in enumerate(["c-1", "c-2"]):
        key = customer.encode()
        value = (
            f'{{"customer_id":"{customer}","source":"web","update_timestamp":1700000000,'
            f'"properties":{{"p0":"first",{properties},"p{count - 1}":"last"}}}}'
        ).encode()
        orjson.loads(value)  # valid JSON
        batch.append(InputRecord(partition_for(key, PARTITIONS), offset, key, value, NOW_MS))
    stored = {
        b"c-2": orjson.dumps({"p": {f"p{i}": [i, 1, "crm"] for i in range(count)}, "d": None})
    }
    settings = _settings(output_format="json")
    expected = run(BatchProcessor, settings, batch, stored)
    assert expected.counts.applied == 2
    assert_same(expected, run(NativeBatchProcessor, settings, batch, stored))
