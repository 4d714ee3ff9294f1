"""Input generation: one topic of JSON change events per scenario, produced before any timing.

Every customer gets ``events // customers`` events (some one more), shuffled over the whole
topic so repeat visits are spread through it. "Fresh" events carry a strictly increasing
``update_timestamp``; a "stale" event carries a time older than the first event of its
customer (which precedes it in its partition), so the merge drops all of its properties.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import orjson
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from benchmarks.common import PARTITIONS

FIRST_NAMES = ("Marian", "Ada", "Grace", "Linus", "Edsger", "Barbara", "Ken", "Frances")
CITIES = ("Bratislava", "Berlin", "Lisbon", "Oslo", "Prague", "Vienna", "Warsaw", "Zagreb")
# Far enough in the past that the newest event is still well before "now" (the processor
# rejects update times beyond its clock-skew allowance).
HISTORY_SECONDS = 30 * 24 * 3600
SEED = 20261123


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    stale_fraction: float


SCENARIOS = (Scenario("fresh", 0.0), Scenario("30% stale", 0.30))


@dataclass(frozen=True, slots=True)
class Dataset:
    """Encoded records, in production order, and what a correct merge must report."""

    scenario: Scenario
    records: list[tuple[bytes, bytes]]
    customers: int
    stale_events: int

    @property
    def events(self) -> int:
        return len(self.records)


def generate(scenario: Scenario, events: int, customers: int, seed: int = SEED) -> Dataset:
    rng = random.Random(f"{seed}-{scenario.name}")
    customers = max(1, min(customers, events))
    order = [index % customers for index in range(events)]
    rng.shuffle(order)
    repeats = [position for position, seen in _repeat_positions(order)]
    wanted = round(scenario.stale_fraction * events)
    if wanted > len(repeats):
        raise ValueError(
            f"{scenario.name}: {wanted} stale events need as many repeat visits, but "
            f"{events} events over {customers} customers have only {len(repeats)}; "
            "use fewer customers"
        )
    stale = set(rng.sample(repeats, wanted))
    base = int(time.time()) - HISTORY_SECONDS
    first_seen: dict[int, int] = {}
    records: list[tuple[bytes, bytes]] = []
    for position, customer in enumerate(order):
        if position in stale:
            # Older than the customer's first event, hence older than anything stored.
            timestamp = first_seen[customer] - rng.randint(1, 86_400)
        else:
            timestamp = base + position
            first_seen.setdefault(customer, timestamp)
        customer_id = f"c-{customer}"
        event = {
            "customer_id": customer_id,
            "source": "crm",
            "update_timestamp": timestamp,
            "properties": {
                "first_name": FIRST_NAMES[rng.randrange(len(FIRST_NAMES))],
                "city": CITIES[rng.randrange(len(CITIES))],
                "score": rng.randrange(1_000_000),
            },
        }
        records.append((customer_id.encode(), orjson.dumps(event)))
    return Dataset(scenario, records, customers, wanted)


def _repeat_positions(order: list[int]) -> list[tuple[int, int]]:
    seen: set[int] = set()
    repeats: list[tuple[int, int]] = []
    for position, customer in enumerate(order):
        if customer in seen:
            repeats.append((position, customer))
        else:
            seen.add(customer)
    return repeats


def create_topic(bootstrap: str, name: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions)], request_timeout=30)
    futures[name].result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        topic = admin.list_topics(topic=name, timeout=10).topics.get(name)
        if topic is not None and topic.error is None and len(topic.partitions) == partitions:
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} did not appear with {partitions} partitions")


def produce(bootstrap: str, topic: str, dataset: Dataset) -> float:
    """Produce every record (keyed, Java-compatible partitioner); returns the seconds taken."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,  # keeps each partition in production order
            "linger.ms": 20,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 2_097_151,
        }
    )
    errors: list[str] = []

    def on_delivery(error: object, message: object) -> None:
        if error is not None:
            errors.append(str(error))

    started = time.perf_counter()
    for key, value in dataset.records:
        while True:
            try:
                producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(120)
    if remaining or errors:
        raise RuntimeError(
            f"producing {topic}: {remaining} undelivered, {len(errors)} errors {errors[:3]}"
        )
    return time.perf_counter() - started


def topic_size(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> int:
    """Records in a topic: the sum of its high watermarks (no transactions, no compaction)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "benchmarks-size"})
    try:
        total = 0
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            total += high - low
        return total
    except KafkaException as exc:
        raise RuntimeError(f"cannot read watermarks of {topic}: {exc}") from exc
    finally:
        consumer.close()
