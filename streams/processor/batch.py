"""One batch of input records in, outputs and new states out. No I/O but the state lookup."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import replace

import orjson

from streams.codecs.events import EventDecoder
from streams.codecs.upserts import UpsertCodec
from streams.errors import InvalidEventError
from streams.kafka.output_records import Origin, OutputRecord
from streams.kafka.partitioner import partition_for
from streams.merge import MergePolicy, apply_event, to_upsert
from streams.model import ChangeEvent, Profile, StaleWrite
from streams.processor.records import BatchCounts, BatchResult, InputRecord
from streams.processor.side_outputs import dead_letter, reroute
from streams.settings import Settings
from streams.state.codec import decode_profile, encode_profile

logger = logging.getLogger(__name__)

LoadStates = Callable[[int, list[bytes]], list[bytes | None]]
"""(partition, customer keys) -> their stored states, ``None`` where absent."""


class BatchProcessor:
    """Decode, validate, merge and encode a batch; the caller owns Kafka and the stores."""

    def __init__(self, settings: Settings, load_states: LoadStates, clock: Callable[[], int]):
        self.settings = settings
        self._load = load_states
        self._clock = clock
        self._decoder = EventDecoder.from_settings(settings)
        self._upserts = UpsertCodec(settings.output_format)
        self._policy = MergePolicy(settings.priorities())
        self._partitions = settings.partitions
        self._shrunk: Set[Origin] = frozenset()

    def process(
        self,
        records: Sequence[InputRecord],
        parked: Mapping[Origin, InvalidEventError] | None = None,
        shrunk: Set[Origin] = frozenset(),
    ) -> BatchResult:
        """``parked`` records (an output of theirs Kafka refused for good) go to the DLQ with
        their reason instead of being merged; the dead letters of ``shrunk`` ones are cut to
        ``MINIMAL_LIMIT_BYTES`` (the DLQ topic refused them at full size)."""
        self._shrunk = shrunk
        result = BatchResult()
        counts = result.counts
        counts.events_in = len(records)
        now = self._clock()
        accepted: list[tuple[InputRecord, ChangeEvent, bytes]] = []
        wanted: dict[int, dict[bytes, None]] = {}
        for record in records:
            result.next_offsets[record.partition] = record.offset + 1
            refused = parked.get((record.partition, record.offset)) if parked else None
            if refused is not None:
                counts.rejected[refused.reason] += 1
                result.outputs.append(dead_letter(self.settings, record, refused, self._shrunk))
                continue
            event = self.decode(record, now)
            if isinstance(event, InvalidEventError):
                counts.rejected[event.reason] += 1
                result.outputs.append(dead_letter(self.settings, record, event, self._shrunk))
                continue
            key = event.customer_id.encode()
            home = partition_for(key, self._partitions)
            if home != record.partition:
                counts.rerouted += 1
                result.outputs.append(reroute(self.settings, record, key, home))
                continue
            accepted.append((record, event, key))
            wanted.setdefault(home, {})[key] = None

        decoded, decoded_counts = len(result.outputs), _copy_counts(counts)
        oversized = self._merge(accepted, wanted, result, now, guarded=frozenset())
        if oversized:
            # Rare: redo the merge, checking those customers event by event.
            del result.outputs[decoded:]
            result.counts, result.states, result.contributors = decoded_counts, {}, {}
            self._merge(accepted, wanted, result, now, guarded=oversized)
        return result

    def decode(self, record: InputRecord, now: int) -> ChangeEvent | InvalidEventError:
        """The record's change event, or why it goes to the DLQ."""
        try:
            return self._decoder.decode(record.key, record.value, record.timestamp_ms, now)
        except InvalidEventError as exc:
            return exc
        except Exception as exc:  # a decoder bug must not kill the worker: park the record
            logger.exception(
                "decoder failed partition=%d offset=%d", record.partition, record.offset
            )
            return InvalidEventError("undecodable", type(exc).__name__)

    def _merge(
        self,
        accepted: list[tuple[InputRecord, ChangeEvent, bytes]],
        wanted: dict[int, dict[bytes, None]],
        result: BatchResult,
        now: int,
        guarded: frozenset[bytes],
    ) -> frozenset[bytes]:
        """Merge, emit and encode new states; returns customers whose state grew too large.

        A state over ``max_state_bytes`` could never be written to the changelog and would
        stall the partition, so for ``guarded`` customers an event that would grow it past
        the limit is sent to the DLQ instead.
        """
        counts = result.counts
        contributors: dict[tuple[int, bytes], list[int]] = {}
        result.contributors = contributors
        limit = self.settings.max_state_bytes
        profiles = self._load_profiles(wanted)
        upsert_topic, stale_topic = self.settings.upserts_topic, self.settings.stale_topic
        for record, event, key in accepted:
            profile = profiles[record.partition, key]
            if key in guarded:
                before = Profile(dict(profile.properties), profile.deleted_at)
                merged = apply_event(profile, event, self._policy)
                size = len(encode_profile(profile))
                if size > limit:
                    profiles[record.partition, key] = before
                    counts.rejected["profile_too_large"] += 1
                    too_large = InvalidEventError(
                        "profile_too_large", f"state would be {size} bytes > {limit}"
                    )
                    result.outputs.append(
                        dead_letter(self.settings, record, too_large, self._shrunk)
                    )
                    continue
            else:
                merged = apply_event(profile, event, self._policy)
            origin = (record.partition, record.offset)
            contributors.setdefault((record.partition, key), []).append(record.offset)
            for stale in merged.stale:
                result.outputs.append(
                    OutputRecord(
                        stale_topic,
                        record.partition,
                        key,
                        _stale_json(stale, now),
                        origin=origin,
                    )
                )
            counts.stale_writes += len(merged.stale)
            upsert = to_upsert(event, merged, now)
            if upsert is None:
                counts.stale_events += 1
                continue
            counts.applied += 1
            counts.upserts_out += 1
            result.outputs.append(
                OutputRecord(
                    upsert_topic,
                    record.partition,
                    key,
                    self._upserts.encode(upsert),
                    origin=origin,
                )
            )
            result.states.setdefault(record.partition, {})[key] = b""
        oversized: set[bytes] = set()
        for partition, keys in result.states.items():
            for key in keys:
                keys[key] = state = encode_profile(profiles[partition, key])
                if len(state) > limit:
                    oversized.add(key)
        return frozenset(oversized)

    def _load_profiles(
        self, wanted: dict[int, dict[bytes, None]]
    ) -> dict[tuple[int, bytes], Profile]:
        profiles: dict[tuple[int, bytes], Profile] = {}
        for partition, keyset in wanted.items():
            keys = list(keyset)
            for key, raw in zip(keys, self._load(partition, keys), strict=True):
                profiles[partition, key] = decode_profile(raw) if raw is not None else Profile()
        return profiles


def _copy_counts(counts: BatchCounts) -> BatchCounts:
    return replace(counts, rejected=Counter(counts.rejected))


def _stale_json(stale: StaleWrite, processed_at: int) -> bytes:
    return orjson.dumps(
        {
            "customer_id": stale.customer_id,
            "property": stale.property,
            "value": stale.value,
            "timestamp": stale.timestamp,
            "stored_last_update": stale.stored_last_update,
            "reason": stale.reason.value,
            "source": stale.source,
            "event_id": stale.event_id,
            "processed_at": processed_at,
        }
    )
