"""The Quix Streams contender does the processor's job (its stateful merge), and the
orchestrator's check catches a Quix run whose counts are wrong."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.common import Result
from benchmarks.contenders import PASSTHROUGH, PROCESSOR, QUIX
from benchmarks.data import SCENARIOS, generate
from benchmarks.quix_app import PROFILE, Totals, make_merge
from benchmarks.report import Report, Row
from benchmarks.run import check_quix


class FakeState:
    """``quixstreams.State`` for one key, over a dict."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.sets = 0

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.sets += 1
        self.data[key] = value


def event(timestamp: int, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": "c-1",
        "source": "crm",
        "update_timestamp": timestamp,
        "properties": properties,
        **extra,
    }


def test_merge_outputs_only_changed_properties_and_drops_stale_ones() -> None:
    totals, state = Totals(), FakeState()
    merge = make_merge(totals)
    first = merge(event(100, {"city": "Oslo", "score": 1}), state)
    assert first == {
        "customer_id": "c-1",
        "properties": {"city": "Oslo", "score": 1},
        "property_timestamps": {"city": 100, "score": 100},
    }
    # Equal and older timestamps are stale: no output, no state write.
    assert merge(event(100, {"city": "Lisbon"}), state) is None
    assert merge(event(99, {"city": "Lisbon", "score": 2}), state) is None
    assert state.sets == 1
    # A property's own timestamp wins over the event's.
    changed = merge(
        event(50, {"city": "Prague", "score": 3}, property_timestamps={"score": 101}), state
    )
    assert changed == {
        "customer_id": "c-1",
        "properties": {"score": 3},
        "property_timestamps": {"score": 101},
    }
    assert state.data[PROFILE] == {"city": ["Oslo", 100], "score": [3, 101]}
    assert totals == Totals(events_in=4, applied=2, stale_events=2, stale_writes=4)


updates = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 1000)),
    min_size=1,
    max_size=12,
    unique_by=lambda update: update[1],  # distinct times: the winner is unambiguous
)


@given(updates, st.randoms(use_true_random=False))
def test_merge_keeps_the_newest_value_of_each_property_in_any_order(
    writes: list[tuple[str, int]], rng: Any
) -> None:
    shuffled = list(writes)
    rng.shuffle(shuffled)
    profiles = []
    for order in (writes, shuffled):
        state = FakeState()
        merge = make_merge(Totals())
        for name, timestamp in order:
            merge(event(timestamp, {name: f"{name}@{timestamp}"}), state)
        profiles.append(state.data[PROFILE])
    newest = {name: max(t for n, t in writes if n == name) for name, _ in writes}
    assert profiles[0] == profiles[1] == {n: [f"{n}@{t}", t] for n, t in newest.items()}


def quix_result(dataset: Any, **changes: int) -> Result:
    stale = dataset.stale_events
    applied = dataset.events - stale
    totals = {
        "events_in": dataset.events,
        "applied": applied,
        "stale_events": stale,
        "stale_writes": 3 * stale,
    }
    topics = {"output": applied, "changelog": dataset.customers}
    for key, value in changes.items():
        (topics if key in topics else totals)[key] = value
    versions = {"quixstreams": "x", "confluent-kafka": "y", "librdkafka": "z"}
    return Result(dataset.events, 1.0, {"totals": totals, "topics": topics, "versions": versions})


def test_check_quix_accepts_the_expected_counts() -> None:
    dataset = generate(SCENARIOS[1], 200, 100)
    report = Report()
    assert check_quix("30% stale", dataset, quix_result(dataset), report)
    assert not report.problems
    assert report.checks[0].endswith("(as expected)")


def test_check_quix_flags_missing_outputs_skipped_stale_checks_and_missing_state() -> None:
    dataset = generate(SCENARIOS[1], 200, 100)
    applied = dataset.events - dataset.stale_events
    for changes, words in (
        ({"output": applied - 1}, "output topic holds"),
        ({"stale_writes": 0}, "totals.stale_writes"),
        ({"changelog": 0}, "changelog topic holds"),
    ):
        report = Report()
        assert not check_quix("30% stale", dataset, quix_result(dataset, **changes), report)
        assert len(report.problems) == 1
        assert words in report.problems[0]


def test_targets_judge_the_processor_against_each_baseline_of_its_scenario() -> None:
    report = Report()
    report.rows += [
        Row("fresh", PASSTHROUGH, Result(100, 1.0)),  # 100 events/s
        Row("fresh", PROCESSOR, Result(100, 3.0)),  # 33 events/s: 0.33x raw
        Row("fresh", QUIX, Result(100, 2.0)),  # 50 events/s: ahead of the processor
    ]
    verdicts = {line.split(": ", 1)[1].rsplit(": ", 1)[0]: met for line, met in report.targets()}
    assert verdicts == {
        "target: processor >= 10x naive Faust": None,
        "target: processor ahead of Quix Streams": False,
        "target: processor >= 0.3x raw passthrough": True,
        "product goal: processor >= 0.5x raw passthrough": False,
    }
