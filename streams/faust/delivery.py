"""Records through Faust's producer (aiokafka), waiting for Kafka's acknowledgement of each,
with the default engine's three outcomes (:mod:`streams.kafka.batch_delivery`): acknowledged;
refused for good (a :class:`Refusal`, for :class:`~streams.processor.parking.Parking`); or not
delivered because Kafka is unavailable (raises :class:`DeliveryError`: the batch is replayed).

aiokafka's broker errors carry Kafka's protocol error code, the code librdkafka reports too:
they become confluent-kafka errors, so one classification (``is_unavailable``) and one set of
dead-letter reasons serve both engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError

from streams.errors import DeliveryError
from streams.kafka.batch_delivery import Refusal
from streams.kafka.dead_letters import is_unavailable
from streams.kafka.output_records import OutputRecord
from streams.optional import requires

with requires("faust", "the Faust engine"):
    from aiokafka.errors import BrokerResponseError
    from faust.exceptions import ProducerSendError


class FaustDelivery:
    """Sends through ``app.producer``; every call ends with its records acknowledged or
    refused, or raises DeliveryError."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def send(
        self, records: Sequence[OutputRecord], *, one_at_a_time: bool = False
    ) -> tuple[list[Refusal], list[Any]]:
        """Produce and wait: the refused records, and each record's metadata (None where
        refused). ``one_at_a_time`` waits for each record before the next: the broker refuses
        a whole batch for one record too large for its topic, so this tells the culprit from
        its neighbours."""
        producer = self._app.producer
        delivered: list[Any] = [None] * len(records)
        refused: list[Refusal] = []
        unavailable: list[str] = []
        waiting: list[int] = []  # indexes of the records whose futures are in ``futures``
        futures: list[Any] = []
        for index, record in enumerate(records):
            try:
                future = await producer.send(
                    record.topic,
                    record.key,
                    record.value,
                    record.partition,
                    _seconds(record.timestamp_ms),
                    list(record.headers) if record.headers else None,
                )
            except ProducerSendError as exc:  # refused before sending, or no metadata in time
                _classify(record, exc.__cause__ or exc, refused, unavailable)
                if unavailable:
                    break  # each further send would wait as long: replay the batch instead
                continue
            if one_at_a_time:
                outcome = await _outcome(future)
                _settle(index, record, outcome, delivered, refused, unavailable)
            else:
                waiting.append(index)
                futures.append(future)
        if futures:
            # Futures gathered as they are (no task per record): the hot path.
            outcomes: list[Any] = await asyncio.gather(*futures, return_exceptions=True)
            for index, outcome in zip(waiting, outcomes, strict=True):
                _settle(index, records[index], outcome, delivered, refused, unavailable)
        if unavailable:
            raise DeliveryError(
                f"{len(unavailable)} of {len(records)} records not delivered, first: "
                f"{unavailable[0]}"
            )
        return refused, delivered


def _settle(
    index: int,
    record: OutputRecord,
    outcome: Any,
    delivered: list[Any],
    refused: list[Refusal],
    unavailable: list[str],
) -> None:
    if isinstance(outcome, BaseException):
        _classify(record, outcome, refused, unavailable)
    else:
        delivered[index] = outcome


def _classify(
    record: OutputRecord, exc: BaseException, refused: list[Refusal], unavailable: list[str]
) -> None:
    """A broker's answer about the record is refused unless it says Kafka is unavailable
    (the default engine's rule); anything else (a timeout, a lost connection, the producer
    stopping) says nothing about the record."""
    if isinstance(exc, BrokerResponseError):
        error = KafkaError(exc.errno, str(exc), retriable=exc.retriable)
        if not is_unavailable(error):
            refused.append(Refusal(record, error))
            return
    unavailable.append(f"{type(exc).__name__}: {exc}")


def _seconds(timestamp_ms: int | None) -> float | None:
    """Faust's producer takes seconds and truncates ``seconds * 1000``: half a millisecond
    more lands on the same millisecond whatever the float error."""
    return None if timestamp_ms is None else (timestamp_ms + 0.5) / 1000


async def _outcome(future: Any) -> Any:
    """The record's metadata, or the exception its delivery ended with."""
    try:
        return await future
    except (Exception, asyncio.CancelledError) as exc:  # KeyboardInterrupt and such propagate
        return exc
