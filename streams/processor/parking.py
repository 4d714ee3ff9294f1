"""Which input records of a batch to park, from the records Kafka refused, and states capped
to what the changelog topic takes: shared by both engines (the default one's worker and the
Faust engine's batches), so a refusal ends the same way in either."""

from __future__ import annotations

import logging
from collections import Counter

from streams.errors import DeliveryError, InvalidEventError
from streams.kafka.batch_delivery import Refusal
from streams.kafka.dead_letters import MINIMAL_LIMIT_BYTES, refusal_reason
from streams.kafka.output_records import Origin, OutputRecord
from streams.kafka.topics import message_limit
from streams.processor.records import BatchResult
from streams.settings import STATE_RECORD_HEADROOM, Settings

logger = logging.getLogger(__name__)

MIN_STATE_BYTES = 1024  # Settings' own lower bound of max_state_bytes


class Parking:
    """Which input records of one batch to park, from the records Kafka refused.

    The first refusal only switches to sending one record at a time (the broker refuses a
    whole batch for one record too large for its topic). After ``produce_attempts`` refusals
    of its own, an output's input record is parked: dead-lettered with the refusal's reason
    and not merged, so its state and upserts stay as if it never came (for a refused state:
    every input merged into it). A refused dead letter is cut to ``MINIMAL_LIMIT_BYTES``;
    refused again, the DLQ topic itself is unusable and the batch is replayed later."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.isolating = False
        self.parked: dict[Origin, InvalidEventError] = {}
        self.shrunk: set[Origin] = set()
        self._refusals: Counter[Origin] = Counter()

    def count(self, refused: list[Refusal], result: BatchResult) -> None:
        settings = self._settings
        first, error = refused[0]
        logger.warning(
            "kafka refused records count=%d isolated=%s first: topic=%s origin=%s error=%s",
            len(refused), self.isolating, first.topic, first.origin, error.str(),
        )  # fmt: skip
        if not self.isolating:
            self.isolating = True
            return
        for record, error in refused:
            for origin in self._origins(record, result):
                self._refusals[origin] += 1
                if self._refusals[origin] < settings.produce_attempts:
                    continue
                self._refusals[origin] = 0
                if record.topic != settings.dlq_topic:
                    detail = f"{record.topic} refused an output: {error.str()}"
                    self.parked[origin] = InvalidEventError(refusal_reason(error), detail)
                elif origin not in self.shrunk:
                    self.shrunk.add(origin)
                else:
                    raise DeliveryError(
                        f"{settings.dlq_topic} refuses even a dead letter of "
                        f"{MINIMAL_LIMIT_BYTES} bytes: {error.str()}"
                    )

    def _origins(self, record: OutputRecord, result: BatchResult) -> list[Origin]:
        if record.topic == self._settings.changelog_topic and record.key is not None:
            offsets = result.contributors.get((record.partition, record.key), [])
            if not offsets:
                raise DeliveryError(f"{record.topic} refused a state no input of the batch made")
            return [(record.partition, offset) for offset in offsets]
        if record.origin is None:
            raise DeliveryError(f"{record.topic} refused a record of no input: cannot park it")
        return [record.origin]


def state_limited(settings: Settings) -> Settings:
    """``settings`` with ``max_state_bytes`` lowered to what the changelog topic accepts: a
    state it refused would park events whose upserts were already delivered."""
    limit = message_limit(settings, settings.changelog_topic)
    if limit is None or limit - STATE_RECORD_HEADROOM >= settings.max_state_bytes:
        return settings
    capped = max(limit - STATE_RECORD_HEADROOM, MIN_STATE_BYTES)
    logger.warning(
        "topic %s takes records up to max.message.bytes=%d: states capped at %d bytes "
        "(STREAMS_MAX_STATE_BYTES=%d)",
        settings.changelog_topic, limit, capped, settings.max_state_bytes,
    )  # fmt: skip
    return settings.model_copy(update={"max_state_bytes": capped})
