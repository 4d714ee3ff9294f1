"""Overlapping batches on the real broker: while one batch is on its way to Kafka the next is
merged on top of its states; a delivery failure with several batches in flight replays them
all, and nothing accepted is lost."""

from __future__ import annotations

import time
from collections.abc import Callable

from streams.errors import DeliveryError
from streams.kafka.batch_delivery import Reports
from streams.kafka.output_records import OutputRecord
from streams.state.codec import decode_profile
from streams.testing import produce_events, read_topic, read_upserts, wait_until

T0 = 1_700_000_000
CUSTOMERS = 20
EVENTS = 300
FAILING_WAITS = (3, 4, 9)


def test_a_delivery_failure_with_batches_in_flight_replays_them_and_loses_nothing(
    streams_settings, start_worker
):
    settings = streams_settings(batch_max_events=10)
    service = start_worker(settings)
    worker = service.worker
    real_wait = worker._delivery.wait
    waits = {"count": 0}

    def flaky_wait(*reports: Reports) -> None:
        waits["count"] += 1
        if waits["count"] in FAILING_WAITS:
            raise DeliveryError("injected: Kafka unavailable")
        real_wait(*reports)

    worker._delivery.wait = flaky_wait
    events = [
        {
            "customer_id": f"c-{i % CUSTOMERS}",
            "source": "crm",
            "update_timestamp": T0 + i,
            "properties": {"n": i, "same": "x"},
        }
        for i in range(EVENTS)
    ]
    produce_events(settings, events)
    # Every event is newer than the one before for its customer: each is applied once.
    wait_until(lambda: worker.totals.applied >= EVENTS, timeout=90)

    assert waits["count"] > max(FAILING_WAITS), "the failures were injected"
    assert worker.totals.applied == EVENTS
    assert worker.metrics.delivery_failures._value.get() >= len(FAILING_WAITS)
    delivered = {(u.customer_id, u.properties["n"].value) for u in read_upserts(settings)}
    assert delivered == {(f"c-{i % CUSTOMERS}", i) for i in range(EVENTS)}

    last = {f"c-{i % CUSTOMERS}": i for i in range(EVENTS)}
    for customer, n in last.items():
        states = [
            store.get(customer.encode())
            for store in (worker.stores.get(p) for p in range(settings.partitions))
            if store is not None
        ]
        (state,) = [s for s in states if s is not None]
        assert decode_profile(state).properties["n"].value == n
    changelog = {r.key: r.value for r in read_topic(settings, settings.changelog_topic)}
    for customer, n in last.items():
        assert decode_profile(changelog[customer.encode()] or b"").properties["n"].value == n


def test_each_batch_is_merged_on_the_states_of_the_batches_before_it_still_on_their_way(
    streams_settings, start_worker
):
    # Full batches of 10 are merged on the merge thread while the batch before is produced:
    # every event adds a property of its own, so a merge that missed a state still in flight
    # (or being handed to the flight) would lose the properties of the events before it.
    settings = streams_settings(batch_max_events=10)
    service = start_worker(settings)
    worker = service.worker
    real_start: Callable[..., Reports] = worker._delivery.start

    def slow_start(records: list[OutputRecord], *, track_offsets: bool) -> Reports:
        # Sending a batch's outputs takes a while: the next batch's merge reads its states
        # meanwhile, before the batch joins the flight.
        time.sleep(0.05)
        return real_start(records, track_offsets=track_offsets)

    worker._delivery.start = slow_start
    events = [
        {
            "customer_id": f"c-{i % CUSTOMERS}",
            "source": "crm",
            "update_timestamp": T0 + i,
            "properties": {f"p{i}": i},
        }
        for i in range(EVENTS)
    ]
    produce_events(settings, events)
    wait_until(lambda: worker.totals.events_in >= EVENTS, timeout=90)
    assert worker.totals.applied == EVENTS

    wanted = {
        f"c-{c}": {f"p{i}" for i in range(EVENTS) if i % CUSTOMERS == c} for c in range(CUSTOMERS)
    }
    changelog = {r.key: r.value for r in read_topic(settings, settings.changelog_topic)}
    for customer, properties in wanted.items():
        state = decode_profile(changelog[customer.encode()] or b"")
        assert set(state.properties) == properties, customer
