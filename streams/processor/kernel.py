"""Who does a batch's per-event work: the Rust kernel (``streams._native``, the default) or
the Python reference (:class:`~streams.processor.batch.BatchProcessor`, ``STREAMS_KERNEL=python``).

The kernel decodes, validates, routes, merges and encodes a whole batch with the GIL released;
Python reads the stored states between those steps and builds dead letters and reroutes (rare)
with the same code as the reference. Records the kernel does not read itself (an unusual
ISO-8601 form, nesting deeper than 128 levels, a schema version it was not built for) are
decoded by the reference decoder, so both kernels give the same results on every input; the
differential tests in tests/test_native/ hold them to it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence, Set

from fastavro.schema import to_parsing_canonical_form

from streams._native import Contributors as NativeContributors
from streams._native import Kernel
from streams.codecs.avro import load_registry
from streams.codecs.events import CHANGE_SCHEMA
from streams.codecs.upserts import UPSERT_SCHEMA
from streams.errors import InvalidEventError
from streams.kafka.output_records import Origin, OutputRecord
from streams.model import ChangeEvent
from streams.processor.batch import BatchProcessor, LoadStates
from streams.processor.records import BatchCounts, BatchResult, InputRecord
from streams.processor.side_outputs import dead_letter, reroute
from streams.settings import Settings

logger = logging.getLogger(__name__)

_PARKED, _REJECTED, _REROUTE = 0, 1, 2  # the kinds of the kernel's fills


def batch_processor(
    settings: Settings, load_states: LoadStates, clock: Callable[[], int]
) -> BatchProcessor | NativeBatchProcessor:
    """The kernel ``settings.kernel`` names."""
    if settings.kernel == "python":
        return BatchProcessor(settings, load_states, clock)
    return NativeBatchProcessor(settings, load_states, clock)


class NativeBatchProcessor:
    """:class:`BatchProcessor`'s contract on the Rust kernel."""

    def __init__(self, settings: Settings, load_states: LoadStates, clock: Callable[[], int]):
        # Decodes the records the kernel leaves to it; does a batch the kernel fails on.
        self._reference = BatchProcessor(settings, load_states, clock)
        self.settings, self._load, self._clock = settings, load_states, clock
        changes, upserts = load_registry(CHANGE_SCHEMA), load_registry(UPSERT_SCHEMA)
        self._kernel = Kernel(
            max_event_bytes=settings.max_event_bytes,
            max_properties=settings.max_properties,
            max_clock_skew_ms=round(settings.max_clock_skew_seconds * 1000),
            partitions=settings.partitions,
            priorities=settings.priorities(),
            output_format=settings.output_format,
            change_schemas=[
                (v.fingerprint, to_parsing_canonical_form(v.parsed)) for v in changes.versions
            ],
            upsert_schema=(
                upserts.current.fingerprint,
                to_parsing_canonical_form(upserts.current.parsed),
            ),
            max_state_bytes=settings.max_state_bytes,
            output_record=OutputRecord,
            upserts_topic=settings.upserts_topic,
            stale_topic=settings.stale_topic,
        )

    def process(
        self,
        records: Sequence[InputRecord],
        parked: Mapping[Origin, InvalidEventError] | None = None,
        shrunk: Set[Origin] = frozenset(),
    ) -> BatchResult:
        now = self._clock()
        flags = [(r.partition, r.offset) in parked for r in records] if parked else []

        def by_reference(index: int) -> ChangeEvent | InvalidEventError:
            return self._reference.decode(records[index], now)

        try:
            answer = self._kernel.process(list(records), flags, now, self._load, by_reference)
        except Exception:  # a kernel bug must not stop the partition: the reference decides
            logger.exception("the native kernel failed on a batch: the Python reference does it")
            return self._reference.process(records, parked, shrunk)
        outputs, fills, states, counted, rejected, next_offsets, contributors = answer
        rejections = Counter(rejected)
        for position, index, kind, first, second in fills:
            record = records[index]
            if kind == _REROUTE:
                outputs[position] = reroute(self.settings, record, second, first)
                continue
            if kind == _PARKED:
                assert parked is not None
                refused = parked[record.partition, record.offset]
                rejections[refused.reason] += 1
            else:
                refused = InvalidEventError(first, second)
            outputs[position] = dead_letter(self.settings, record, refused, shrunk)
        events_in, applied, stale_events, stale_writes, upserts_out, rerouted = counted
        counts = BatchCounts(
            events_in, applied, stale_events, stale_writes, upserts_out, rerouted, rejections
        )
        return BatchResult(outputs, states, next_offsets, counts, _Contributors(contributors))


class _Contributors(Mapping[tuple[int, bytes], list[int]]):
    """(partition, customer key) -> offsets merged into its new state, built when first read
    (only when Kafka refused a state: rare)."""

    def __init__(self, native: NativeContributors) -> None:
        self._native = native
        self._built: dict[tuple[int, bytes], list[int]] | None = None

    def _table(self) -> dict[tuple[int, bytes], list[int]]:
        if self._built is None:
            self._built = self._native.table()
        return self._built

    def __getitem__(self, key: tuple[int, bytes]) -> list[int]:
        return self._table()[key]

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())
