"""Proca messages to change events: the mapping, pure (no broker)."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.codecs.events import EventDecoder
from streams.errors import InvalidEventError
from streams.ingest.amqp.proca import (
    ProcaOptions,
    contact_ref_for,
    map_message,
)

SAMPLES = Path(__file__).parents[2] / "samples" / "proca_messages.jsonl"
OPTIONS = ProcaOptions()
NOW_MS = 1_900_000_000_000


def samples() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines() if line.strip()]


def mapped_event(message: dict[str, Any], options: ProcaOptions = OPTIONS) -> dict[str, Any]:
    result = map_message(orjson.dumps(message), options)
    assert len(result.events) == 1
    return result.events[0]


def test_action_v2_maps_contact_action_and_consent() -> None:
    event = mapped_event(samples()[0])
    assert event["customer_id"] == "marian.galik@example.com"
    assert event["source"] == "proca"
    assert event["event_id"] == "proca:action:1001:deliver"
    assert event["update_timestamp"] == 1709633700.0  # action.createdAt, never the consume time
    assert event["properties"] == {
        "email": "marian.galik@example.com",
        "contact_ref": "uL2mE1VrWkq3ms7Jm0yqk9xG4S8GfvC2oRr4yUqJ1tA",
        "first_name": "Marian",
        "last_name": "Galik",
        "country": "SK",
        "postcode": "81101",
        "area": "SK",
        "last_action_id": 1001,
        "last_action_type": "register",
        "last_action_at": "2024-03-05T10:15:00.000Z",
        "last_campaign": "savebees",
        "last_action_page": "savebees/en",
        "last_action_page_id": 12,
        "locale": "en",
        "last_utm_source": "newsletter",
        "last_utm_medium": "email",
        "last_utm_campaign": "spring",
        "last_utm_content": "",
        "email_opt_in": True,
    }
    assert event["property_timestamps"] == {"email_opt_in": 1709633700.0}


def test_every_sample_event_passes_the_processors_validation() -> None:
    decoder = EventDecoder(max_event_bytes=262144, max_properties=1000, max_clock_skew_ms=0)
    kinds = []
    for message in samples():
        result = map_message(orjson.dumps(message), OPTIONS)
        kinds.append(result.kind)
        for event in result.events:
            key, _, decoded = decoder.encode(event, NOW_MS)
            assert decoded.customer_id == key.decode() == event["customer_id"]
    assert kinds == ["action", "action", "email_status", "email_status", "action", "ignored"]


def test_unverified_email_status_none_does_not_overwrite_a_known_status() -> None:
    event = mapped_event(samples()[1])
    assert "email_status" not in event["properties"]
    assert event["properties"]["email_opt_in"] is True


def test_double_opt_in_event_is_a_timestamped_consent() -> None:
    event = mapped_event(samples()[2])
    assert event["customer_id"] == "anna@example.org"
    stamp = 1709717381.0  # emailStatusChanged 2024-03-06T09:29:41Z, not the event timestamp
    assert event["update_timestamp"] == stamp
    assert event["properties"] == {
        "email": "anna@example.org",
        "contact_ref": "anna-ref-1",
        "email_status": "double_opt_in",
        "email_status_at": "2024-03-06T09:29:41.000Z",
        "email_opt_in": True,
    }
    assert event["event_id"] == f"proca:email_status:anna-ref-1:double_opt_in:{int(stamp * 1000)}"


@pytest.mark.parametrize(
    ("status", "opt_in"),
    [("bounce", False), ("blocked", False), ("spam", False), ("unsub", False)],
)
def test_bounce_spam_and_unsubscribe_withdraw_opt_in(status: str, opt_in: bool) -> None:
    message = copy.deepcopy(samples()[3])
    message["supporter"]["privacy"]["emailStatus"] = status
    event = mapped_event(message)
    assert event["properties"]["email_status"] == status
    assert event["properties"]["email_opt_in"] is opt_in
    assert event["update_timestamp"] == 1709809080.0


def test_email_status_without_changed_time_uses_the_event_timestamp() -> None:
    message = copy.deepcopy(samples()[3])
    del message["supporter"]["privacy"]["emailStatusChanged"]
    assert mapped_event(message)["update_timestamp"] == 1709809200.0


def test_email_status_inside_an_action_is_stamped_with_its_change_time() -> None:
    message = copy.deepcopy(samples()[0])
    message["privacy"].update(emailStatus="spam", emailStatusChanged="2024-04-01T00:00:00Z")
    event = mapped_event(message)
    assert event["properties"]["email_status"] == "spam"
    assert event["properties"]["email_opt_in"] is False
    spam_at = 1711929600.0
    assert event["property_timestamps"] == {
        "email_opt_in": spam_at,
        "email_status": spam_at,
        "email_status_at": spam_at,
    }


def test_action_v1_reads_pii_from_the_payload() -> None:
    event = mapped_event(samples()[4])
    assert event["customer_id"] == "jean@example.fr"
    assert event["properties"]["contact_ref"] == "jean-ref"
    assert event["properties"]["last_name"] == "Dupont"
    assert event["properties"]["postcode"] == "75001"
    assert event["properties"]["email_opt_in"] is False
    assert event["update_timestamp"] == 1635875110.0  # naive ISO time means UTC


def test_other_events_and_test_actions_are_ignored() -> None:
    assert map_message(orjson.dumps(samples()[5]), OPTIONS).events == ()
    testing = copy.deepcopy(samples()[0])
    testing["action"]["testing"] = True
    assert map_message(orjson.dumps(testing), OPTIONS).kind == "ignored"
    kept = map_message(orjson.dumps(testing), ProcaOptions(skip_testing=False))
    assert kept.kind == "action"


def test_missing_contact_ref_is_computed_the_proca_way() -> None:
    message = copy.deepcopy(samples()[1])
    del message["contact"]["contactRef"]
    seeded = ProcaOptions(contact_ref_seed="s3cret")
    ref = mapped_event(message, seeded)["properties"]["contact_ref"]
    assert ref == contact_ref_for("anna@example.org", "s3cret")
    # base64url of a SHA-256 without padding: 43 characters of the URL-safe alphabet
    assert len(ref) == 43
    assert "=" not in ref


def test_custom_fields_are_kept_with_a_prefix_when_asked() -> None:
    event = mapped_event(samples()[0], ProcaOptions(custom_field_prefix="action_"))
    assert event["properties"]["action_comment"] == "Bees matter"
    assert event["properties"]["action_topics"] == "bees,pesticides"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"schema": "other:1"}', "unknown_schema"),
        (b"{}", "unknown_schema"),
    ],
)
def test_bad_messages_raise_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        map_message(body, OPTIONS)
    assert caught.value.reason == reason


def test_no_email_and_no_time_are_permanent_errors() -> None:
    message = copy.deepcopy(samples()[0])
    message["contact"]["email"] = " "
    with pytest.raises(InvalidEventError, match="missing_email"):
        map_message(orjson.dumps(message), OPTIONS)
    message = copy.deepcopy(samples()[0])
    del message["action"]["createdAt"]
    with pytest.raises(InvalidEventError, match="missing_timestamp"):
        map_message(orjson.dumps(message), OPTIONS)


def test_redelivery_yields_identical_events() -> None:
    for message in samples():
        body = orjson.dumps(message)
        assert map_message(body, OPTIONS) == map_message(body, OPTIONS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_input_maps_or_raises_invalid_event_never_anything_else(body: bytes) -> None:
    with contextlib.suppress(InvalidEventError):
        map_message(body, OPTIONS)


@given(
    st.dictionaries(
        st.sampled_from(["email", "firstName", "lastName", "phone", "address", "contactRef"]),
        json_values,
    ),
    st.dictionaries(st.sampled_from(["optIn", "givenAt", "emailStatus"]), json_values),
)
def test_mutated_actions_map_or_raise_invalid_event(
    contact: dict[str, Any], privacy: dict[str, Any]
) -> None:
    message = copy.deepcopy(samples()[0])
    message["contact"].update(contact)
    message["privacy"].update(privacy)
    decoder = EventDecoder(max_event_bytes=262144, max_properties=1000, max_clock_skew_ms=0)
    try:
        for event in map_message(json.dumps(message).encode(), OPTIONS).events:
            decoder.encode(event, NOW_MS)
    except InvalidEventError:
        pass
