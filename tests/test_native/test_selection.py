"""The kernel is built (a missing extension fails here, in CI too), is the default, and
``STREAMS_KERNEL=python`` selects the reference; the native partitioner equals Kafka's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams import _native
from streams.kafka.partitioner import partition_for
from streams.processor.batch import BatchProcessor
from streams.processor.kernel import NativeBatchProcessor, batch_processor
from streams.settings import Settings


def _no_states(_partition: int, keys: list[bytes]) -> list[bytes | None]:
    return [None] * len(keys)


def test_the_native_kernel_is_the_default() -> None:
    processor = batch_processor(Settings(), _no_states, lambda: 0)
    assert isinstance(processor, NativeBatchProcessor)


def test_streams_kernel_python_selects_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_KERNEL", "python")
    processor = batch_processor(Settings(), _no_states, lambda: 0)
    assert type(processor) is BatchProcessor


def test_an_unknown_kernel_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMS_KERNEL", "fortran")
    with pytest.raises(ValueError, match="kernel"):
        Settings()


@given(key=st.binary(max_size=64), partitions=st.integers(1, 10_000))
def test_the_native_partitioner_is_kafkas(key: bytes, partitions: int) -> None:
    assert _native.partition_for(key, partitions) == partition_for(key, partitions)


def test_a_kernel_failure_hands_the_batch_to_the_reference(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in the kernel (here: a state it cannot read) must not stop the partition."""
    import orjson

    from streams.processor.records import InputRecord

    key = b"c-1"
    partition = partition_for(key, 8)
    event = {"customer_id": "c-1", "source": "web", "properties": {"a": 1}}
    record = InputRecord(partition, 0, key, orjson.dumps(event), 1_700_000_000_000)

    def broken_state(_partition: int, keys: list[bytes]) -> list[bytes | None]:
        # Valid for the reference (a Python int), a stored value the kernel does not take.
        return [b'{"p":{"a":[18446744073709551615,5,"crm"]},"d":null}'] * len(keys)

    native = NativeBatchProcessor(Settings(), broken_state, lambda: 1_700_000_100_000)
    reference = BatchProcessor(Settings(), broken_state, lambda: 1_700_000_100_000)
    result = native.process([record])
    assert "the native kernel failed" in caplog.text
    assert result.counts == reference.process([record]).counts
    assert result.counts.applied == 1
