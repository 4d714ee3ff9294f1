"""The merge rules of docs/contract.md (1-6), one example each; limits (7) are the decoder's."""

from __future__ import annotations

from streams.merge import MergePolicy, apply_event, to_upsert
from streams.model import ChangeEvent, Op, Profile, PropertyState, StaleReason

POLICY = MergePolicy({"crm": 2, "web": 1})


def upsert(ts: int, source: str = "web", **props: object) -> ChangeEvent:
    return ChangeEvent("c-42", source, Op.UPSERT, ts, props)  # type: ignore[arg-type]


def test_newer_overwrites_and_older_is_stale():
    profile = Profile()
    assert apply_event(profile, upsert(100, city="Brno"), POLICY).changed
    result = apply_event(profile, upsert(90, city="Praha"), POLICY)
    assert not result.accepted
    assert result.stale[0].reason is StaleReason.OLDER
    assert result.stale[0].stored_last_update == 100
    assert profile.properties["city"] == PropertyState("Brno", 100, "web")
    assert apply_event(profile, upsert(101, city="Praha"), POLICY).changed
    assert profile.properties["city"].value == "Praha"


def test_only_the_fresh_properties_of_an_event_are_emitted():
    profile = Profile()
    apply_event(profile, upsert(100, city="Brno"), POLICY)
    event = ChangeEvent("c-42", "web", Op.UPSERT, 50, {"city": "Praha", "first_name": "Marian"})
    result = apply_event(profile, event, POLICY)
    built = to_upsert(event, result, processed_at=7)
    assert built is not None
    assert set(built.properties) == {"first_name"}
    assert [s.property for s in result.stale] == ["city"]


def test_equal_timestamps_break_ties_by_source_priority_then_value():
    profile = Profile()
    apply_event(profile, upsert(100, source="crm", city="A"), POLICY)
    lost = apply_event(profile, upsert(100, source="web", city="Z"), POLICY)
    assert lost.stale[0].reason is StaleReason.TIE_LOST
    assert profile.properties["city"].source == "crm"
    apply_event(profile, upsert(100, source="crm", city="B"), POLICY)
    assert profile.properties["city"].value == "B"


def test_unknown_timestamps_lose_to_any_known_timestamp():
    profile = Profile()
    apply_event(profile, upsert(0, city="known"), POLICY)
    result = apply_event(profile, upsert(-1, source="crm", city="legacy"), POLICY)
    assert result.stale[0].reason is StaleReason.OLDER
    assert profile.properties["city"].value == "known"


def test_null_unsets_at_its_timestamp_and_blocks_older_writes():
    profile = Profile()
    apply_event(profile, upsert(100, city="Brno"), POLICY)
    apply_event(profile, upsert(110, city=None), POLICY)
    assert profile.properties["city"] == PropertyState(None, 110, "web")
    assert not apply_event(profile, upsert(105, city="Praha"), POLICY).accepted


def test_delete_removes_older_properties_and_sets_the_watermark():
    profile = Profile()
    apply_event(profile, upsert(100, city="Brno"), POLICY)
    apply_event(profile, upsert(300, first_name="Marian"), POLICY)
    delete = ChangeEvent("c-42", "crm", Op.DELETE, 200)
    result = apply_event(profile, delete, POLICY)
    assert result.deleted_at == 200
    assert set(profile.properties) == {"first_name"}
    late = apply_event(profile, upsert(200, city="Praha"), POLICY)
    assert late.stale[0].reason is StaleReason.DELETED
    assert apply_event(profile, upsert(201, city="Ostrava"), POLICY).changed
    older_delete = apply_event(profile, ChangeEvent("c-42", "crm", Op.DELETE, 150), POLICY)
    assert not older_delete.accepted
    assert profile.deleted_at == 200
