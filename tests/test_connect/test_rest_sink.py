"""The REST sink against a real local CRM server: modes, auth, failures, non-regression."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.codecs.upserts import UpsertCodec
from streams.connect.config import BatchConfig, ConnectorConfig, build_sink, load_config
from streams.connect.errors import RetryableSinkError, SinkBackpressureError, SinkConfigError
from streams.connect.sinks.rest import RestSink
from streams.connect.worker import ConnectorWorker
from streams.httpclient.backoff import RetryConfig
from streams.kafka.topics import ensure_topic
from streams.merge import MergePolicy, apply_event, to_upsert
from streams.model import ChangeEvent, Op, Profile, PropertyState, Upsert
from streams.settings import Settings
from streams.testing import read_topic, wait_until
from tests.test_connect.crm_fixtures import (
    MODE_OPTIONS,
    T0,
    SinkFactory,
    as_record,
    delete_record,
    running_crm,
    sink_options,
    upsert_record,
    visible,
)
from tests.test_connect.crm_server import CrmServer, Fault

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def crm() -> Iterator[CrmServer]:
    with running_crm() as server:
        yield server


@pytest.fixture
def make_sink(tmp_path: Path) -> Iterator[SinkFactory]:
    factory = SinkFactory(tmp_path)
    yield factory
    factory.close()


# -- modes end to end -----------------------------------------------------------------------


def test_upsert_mode_sends_mapped_fields_converted(crm, make_sink):
    sink = make_sink(crm)
    record = upsert_record(
        "c-1",
        {
            "first_name": ("Marian", T0),
            "age": ("42", T0),
            "score": (3, T0),
            "vip": ("yes", T0),
            "signed_up": (T0 + 250, T0),
            "internal_note": ("never sent", T0),
        },
    )
    assert sink.write([record]).rejected == []
    assert crm.contact("c-1") == {
        "id": "c-1",
        "first_name": "Marian",
        "age": 42,
        "score": 3.0,
        "vip": True,
        "signed_up_at": "2023-11-14T22:13:20.250Z",
    }
    (put,) = crm.requests("PUT")
    assert put.path == "/api/people/c-1"
    assert "internal_note" not in put.body


def test_create_or_update_creates_once_then_updates(crm, make_sink):
    sink = make_sink(crm, "create_or_update")
    sink.write([upsert_record("c-1", {"first_name": ("Ann", T0)})])
    sink.write([upsert_record("c-1", {"age": (30, T0 + 1)})])
    assert crm.contact("c-1") == {"id": "c-1", "first_name": "Ann", "age": 30}
    assert [r.method for r in crm.requests()] == ["GET", "POST", "GET", "PATCH"]
    assert crm.requests("PATCH")[0].body == {"id": "c-1", "age": 30}  # only what changed


def test_create_or_update_finds_contacts_by_email(crm, make_sink):
    options = {**MODE_OPTIONS["create_or_update"]["create_or_update"], "search_by": "email"}
    sink = make_sink(crm, "create_or_update", create_or_update=options)
    crm.seed({"email": "ann@example.com", "first_name": "Ann"})  # created by someone else
    sink.write([upsert_record("c-9", {"email": ("ann@example.com", T0), "age": (40, T0)})])
    assert crm.contacts() == [
        {"email": "ann@example.com", "first_name": "Ann", "age": 40, "id": "c-9"}
    ]
    # The address changes: the lookup uses the address the CRM has, so no duplicate appears.
    sink.write([upsert_record("c-9", {"email": ("ann@example.org", T0 + 1)})])
    assert [c["email"] for c in crm.contacts()] == ["ann@example.org"]
    searches = [r.query for r in crm.requests("GET", "/search")]
    assert searches == [{"email": "ann@example.com"}, {"email": "ann@example.com"}]


def test_bulk_job_is_polled_and_per_record_results_reported(make_sink):
    with running_crm(bulk_polls=3) as crm:
        sink = make_sink(crm, "bulk")
        good = upsert_record("c-1", {"email": ("a@example.com", T0)})
        bad = upsert_record("c-2", {"email": ("not-an-address", T0)})
        other = upsert_record("c-3", {"first_name": ("Bo", T0)})
        result = sink.write([good, bad, other])
        assert [(r.record, r.reason) for r in result.rejected] == [(bad, "invalid_email")]
        assert "email" in result.rejected[0].detail
        assert visible(crm.contact("c-1")) == {"email": "a@example.com"}
        assert crm.contact("c-2") is None
        assert len(crm.requests("POST", "/imports")) == 1
        assert len(crm.requests("GET", "/imports/")) == 3
        # The rejected customer was not recorded as delivered: a fixed address is sent.
        sink.write([upsert_record("c-2", {"email": ("c@example.com", T0 + 1)})])
        assert visible(crm.contact("c-2")) == {"email": "c@example.com"}


def test_bulk_job_refused_for_named_records_is_resubmitted_without_them(crm, make_sink):
    sink = make_sink(crm, "bulk")
    errors = [{"index": 1, "code": "duplicate_email", "message": "email used by another"}]
    crm.inject(Fault(status=422, body={"errors": errors}, method="POST"))
    batch = [upsert_record(f"c-{i}", {"age": (i, T0)}) for i in range(3)]
    result = sink.write(batch)
    assert [(r.record, r.reason) for r in result.rejected] == [(batch[1], "duplicate_email")]
    assert [len(r.body["records"]) for r in crm.requests("POST")] == [3, 2]
    assert {c["id"] for c in crm.contacts()} == {"c-0", "c-2"}


def test_bulk_never_submits_while_an_older_job_may_still_run(make_sink):
    with running_crm(bulk_polls=1000) as crm:
        sink = make_sink(
            crm, "bulk", bulk={"path": "/imports", "poll_interval_s": 0.01, "max_wait_s": 0.1}
        )
        batch = [upsert_record("c-1", {"first_name": ("Old", T0)})]
        with pytest.raises(RetryableSinkError, match="not done"):
            sink.write(batch)
        crm.bulk_polls = 1  # the old job finishes at its next poll
        sink.write(batch)
        submits = crm.requests("POST", "/imports")
        polls = crm.requests("GET", "/imports/")
        assert len(submits) == 2
        # The retry polled the first job to its end before submitting the second.
        first_job_polls = [p for p in polls if p.path.endswith("job-1")]
        assert polls.index(first_job_polls[-1]) < len(polls) - 1
        assert visible(crm.contact("c-1")) == {"first_name": "Old"}


def test_bulk_job_that_fails_is_retryable_and_not_waited_for_again(crm, make_sink):
    sink = make_sink(crm, "bulk")
    failed = {"status": "failed", "error": "import worker crashed"}
    crm.inject(Fault(status=200, body=failed, method="GET", path_contains="/imports/"))
    batch = [upsert_record("c-1", {"age": (1, T0)})]
    with pytest.raises(RetryableSinkError, match="failed"):
        sink.write(batch)
    assert sink.write(batch).rejected == []
    assert visible(crm.contact("c-1")) == {"age": 1}
    assert len(crm.requests("POST", "/imports")) == 2


# -- deletes --------------------------------------------------------------------------------


def test_on_delete_delete_removes_then_recreates_newer_properties(crm, make_sink):
    sink = make_sink(crm, on_delete="delete")
    sink.write([upsert_record("c-1", {"first_name": ("Ann", T0), "age": (30, T0 + 100)})])
    sink.write([delete_record("c-1", T0 + 50)])
    # age was written after the delete time: it survives, as in the processor.
    assert crm.contact("c-1") == {"id": "c-1", "age": 30}
    assert [r.method for r in crm.requests()] == ["PUT", "DELETE", "PUT"]
    # A write from before the delete arriving late is stale: nothing is sent.
    sink.write([upsert_record("c-1", {"first_name": ("Ann", T0 + 10)})])
    assert len(crm.requests()) == 3


def test_on_delete_property_and_ignore(crm, make_sink):
    marked = make_sink(
        crm, name="marked", on_delete="property", delete={"field": "status", "value": "deleted"}
    )
    marked.write([upsert_record("c-1", {"first_name": ("Ann", T0)})])
    marked.write([delete_record("c-1", T0 + 5)])
    assert crm.contact("c-1") == {"id": "c-1", "first_name": "Ann", "status": "deleted"}
    ignoring = make_sink(crm, name="ignoring", on_delete="ignore")
    before = len(crm.requests())
    ignoring.write([delete_record("c-1", T0 + 6)])
    assert len(crm.requests()) == before


def test_create_or_update_delete_uses_the_found_contact(crm, make_sink):
    sink = make_sink(crm, "create_or_update", on_delete="delete")
    sink.write([upsert_record("c-1", {"first_name": ("Ann", T0)})])
    sink.write([delete_record("c-1", T0 + 5)])
    assert crm.contacts() == []
    assert crm.requests("DELETE")[0].path.startswith("/api/contacts/ct-")


# -- non-regression -------------------------------------------------------------------------


def test_replayed_or_older_upserts_send_nothing_even_after_restart(crm, make_sink, tmp_path):
    sink = make_sink(crm, name="replay")
    newer = upsert_record("c-1", {"first_name": ("New", T0 + 10), "age": (31, T0 + 10)})
    sink.write([newer])
    sink.close()
    sink = make_sink(crm, name="replay")  # same state dir
    older = upsert_record("c-1", {"first_name": ("Old", T0), "age": (30, T0 + 20)})
    sink.write([newer, older])
    assert crm.contact("c-1") == {"id": "c-1", "first_name": "New", "age": 30}
    assert [r.body for r in crm.requests("PUT")][1] == {"id": "c-1", "age": 30}


SOURCES = ["crm", "web"]
NAMES = ["first_name", "age", "internal_note"]
VALUES = {
    "first_name": st.none() | st.sampled_from(["Ann", "Bo", ""]),
    "age": st.none() | st.integers(-2, 2),
    "internal_note": st.text(max_size=2),
}
CUSTOMERS = ["c-1", "c-2"]


@st.composite
def change_events(draw: st.DrawFn) -> ChangeEvent:
    customer, source = draw(st.sampled_from(CUSTOMERS)), draw(st.sampled_from(SOURCES))
    timestamp = draw(st.integers(-1, 6))
    if draw(st.integers(0, 6)) == 0:
        return ChangeEvent(customer, source, Op.DELETE, max(timestamp, 0))
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, unique=True))
    properties = {name: draw(VALUES[name]) for name in names}
    return ChangeEvent(customer, source, Op.UPSERT, timestamp, properties)


DELETE_PATHS = {"upsert": {}, "create_or_update": {}, "bulk": {"delete": {"path": "/people/{id}"}}}


@pytest.fixture(scope="module")
def shared_crm() -> Iterator[CrmServer]:
    with running_crm(bulk_polls=1) as server:
        yield server


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    st.sampled_from(["upsert", "create_or_update", "bulk"]),
    st.lists(change_events(), max_size=12),
    st.randoms(use_true_random=False),
)
def test_any_order_of_upserts_ends_equal_to_the_merge(shared_crm, mode, events, rnd):
    """Replays, duplicates and reordering of profile-upserts never regress the destination."""
    crm = shared_crm
    crm.reset()
    app_settings = Settings(source_priority=["web", "crm"])
    policy = MergePolicy(app_settings.priorities())
    profiles: dict[str, Profile] = {}
    upserts = []
    for event in events:  # what the processor would emit for these events
        result = apply_event(profiles.setdefault(event.customer_id, Profile()), event, policy)
        upsert = to_upsert(event, result, T0)
        if upsert is not None:
            upserts.append(upsert)
    delivered = upserts + rnd.sample(upserts, k=len(upserts) // 2)
    rnd.shuffle(delivered)
    with tempfile.TemporaryDirectory() as state:
        sink = RestSink(
            sink_options(crm, mode, on_delete="delete", state_dir=state, **DELETE_PATHS[mode]),
            name="prop",
            settings=app_settings,
        )
        try:
            while delivered:
                size = rnd.randint(1, 4)
                batch, delivered = delivered[:size], delivered[size:]
                assert sink.write([as_record(u) for u in batch]).rejected == []
        finally:
            sink.close()
    for customer in CUSTOMERS:
        profile = profiles.get(customer, Profile())
        expected = {
            name: state.value
            for name, state in profile.properties.items()
            if name != "internal_note" and state.value is not None
        }
        assert visible(crm.contact(customer)) == expected


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), (None, 2.5), ("soon", 2.5)],
)
def test_429_raises_backpressure_with_retry_after(crm, make_sink, header, expected):
    sink = make_sink(crm, default_retry_after_s=2.5)
    crm.inject(Fault(status=429, retry_after=header))
    with pytest.raises(SinkBackpressureError) as caught:
        sink.write([upsert_record("c-1", {"first_name": ("Ann", T0)})])
    assert caught.value.retry_after == expected


def test_429_http_date_and_no_half_applied_regression(crm, make_sink):
    sink = make_sink(crm, max_concurrency=1)
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    crm.inject(Fault(status=429, retry_after=when, path_contains="/people/c-2"))
    batch = [
        upsert_record("c-1", {"first_name": ("A1", T0)}),
        upsert_record("c-2", {"first_name": ("B1", T0)}),
        upsert_record("c-3", {"first_name": ("C1", T0)}),
    ]
    with pytest.raises(SinkBackpressureError) as caught:
        sink.write(batch)
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30
    # Nothing more was sent after the 429; c-1 was accepted and is remembered.
    assert [r.path for r in crm.requests("PUT")] == ["/api/people/c-1", "/api/people/c-2"]
    sink.write([upsert_record("c-1", {"first_name": ("A2", T0 + 5)})])
    sink.write(batch)  # the worker's retry of the whole batch
    assert visible(crm.contact("c-1")) == {"first_name": "A2"}
    assert visible(crm.contact("c-2")) == {"first_name": "B1"}
    assert [r.path for r in crm.requests("PUT")][2:] == [
        "/api/people/c-1",
        "/api/people/c-2",
        "/api/people/c-3",
    ]


def test_500_is_retryable_and_the_retry_completes(crm, make_sink):
    sink = make_sink(crm)
    crm.inject(Fault(status=503, retry_after="3"))
    batch = [upsert_record("c-1", {"age": (5, T0)})]
    with pytest.raises(RetryableSinkError) as caught:
        sink.write(batch)
    assert not isinstance(caught.value, SinkBackpressureError)
    assert caught.value.retry_after == 3.0
    crm.inject(Fault(status=500))
    with pytest.raises(RetryableSinkError):
        sink.write(batch)
    assert sink.write(batch).rejected == []
    assert visible(crm.contact("c-1")) == {"age": 5}


def test_timeout_is_retryable_and_the_retry_makes_no_duplicate(crm, make_sink):
    sink = make_sink(crm, "create_or_update", timeout_s=0.3)
    crm.inject(Fault(delay_s=1.0, method="POST"))  # created, but the answer comes too late
    batch = [upsert_record("c-1", {"first_name": ("Ann", T0)})]
    with pytest.raises(RetryableSinkError, match="timed out"):
        sink.write(batch)
    sink.write(batch)
    assert len(crm.contacts()) == 1
    assert [r.method for r in crm.requests()] == ["GET", "POST", "GET", "PATCH"]


def test_connection_refused_is_retryable(make_sink):
    with running_crm() as crm:
        sink = make_sink(crm)
    with pytest.raises(RetryableSinkError):
        sink.write([upsert_record("c-1", {"age": (1, T0)})])


@pytest.mark.parametrize("mode", ["upsert", "create_or_update", "bulk"])
def test_invalid_records_rejected_with_the_servers_reason_rest_delivered(crm, make_sink, mode):
    sink = make_sink(crm, mode)
    good = upsert_record("c-1", {"email": ("ann@example.com", T0)})
    bad = upsert_record("c-2", {"email": ("bo at example", T0)})
    bad_again = upsert_record("c-2", {"first_name": ("Bo", T0)})
    result = sink.write([good, bad, bad_again])
    assert {(r.record.offset, r.reason) for r in result.rejected} == {
        (bad.offset, "invalid_email"),
        (bad_again.offset, "invalid_email"),
    }
    assert {r.detail for r in result.rejected} == {"email: not a valid address"}
    assert visible(crm.contact("c-1")) == {"email": "ann@example.com"}
    assert crm.contact("c-2") is None


def test_conflict_rejects_the_customer_instead_of_retrying_forever(crm, make_sink):
    sink = make_sink(crm, "create_or_update")
    body = {"error": {"code": "email_taken", "message": "address belongs to ct-7"}}
    crm.inject(Fault(status=409, body=body, method="POST"))
    record = upsert_record("c-1", {"email": ("ann@example.com", T0)})
    (rejection,) = sink.write([record]).rejected
    assert (rejection.record, rejection.reason) == (record, "email_taken")


def test_send_all_fields_for_destinations_that_replace_on_put(crm, make_sink):
    sink = make_sink(crm, send_all_fields=True)
    sink.write([upsert_record("c-1", {"first_name": ("Ann", T0), "age": (1, T0)})])
    sink.write([upsert_record("c-1", {"age": (2, T0 + 1)})])
    assert crm.requests("PUT")[1].body == {"id": "c-1", "first_name": "Ann", "age": 2}


def test_mapping_failure_rejects_only_that_record(crm, make_sink):
    sink = make_sink(crm)
    bad = upsert_record("c-1", {"age": ("forty", T0)})
    good = upsert_record("c-1", {"first_name": ("Ann", T0)})
    result = sink.write([bad, good])
    assert [(r.record, r.reason) for r in result.rejected] == [(bad, "mapping")]
    assert visible(crm.contact("c-1")) == {"first_name": "Ann"}


# -- concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["upsert", "create_or_update"])
def test_concurrency_is_bounded(make_sink, mode):
    with running_crm(latency_s=0.05) as crm:
        sink = make_sink(crm, mode, max_concurrency=3)
        sink.write([upsert_record(f"c-{i}", {"age": (i, T0)}) for i in range(12)])
        assert crm.max_in_flight == 3
        assert len(crm.contacts()) == 12


# -- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["api_key", "basic", "bearer", "oauth2"])
def test_each_auth_scheme_works_and_wrong_credentials_stop_the_connector(make_sink, scheme):
    with running_crm(auth=scheme) as crm:
        sink = make_sink(crm, name=f"good-{scheme}")
        sink.write([upsert_record("c-1", {"age": (1, T0)})])
        assert visible(crm.contact("c-1")) == {"age": 1}
        good = crm.secret
        crm.secret = "rotated"  # the credentials the sink holds are now refused
        if scheme == "oauth2":
            crm.expire_tokens()
        with pytest.raises(SinkConfigError) as caught:
            sink.write([upsert_record("c-1", {"age": (2, T0 + 1)})])
        assert good not in str(caught.value)
        assert visible(crm.contact("c-1")) == {"age": 1}


def test_oauth2_token_cached_refreshed_before_expiry_and_on_401(make_sink):
    with running_crm(auth="oauth2", token_ttl_s=1.0) as crm:
        sink = make_sink(crm, auth={**sink_options(crm)["auth"], "client_auth": "body"})
        assert crm.token_requests == 1  # fetched in setup()
        for i in range(3):
            sink.write([upsert_record("c-1", {"age": (i, T0 + i)})])
        assert crm.token_requests == 1
        time.sleep(0.6)  # past expiry minus the margin (half the lifetime for short tokens)
        sink.write([upsert_record("c-1", {"age": (10, T0 + 10)})])
        assert crm.token_requests == 2
        crm.expire_tokens()  # revoked early: the 401 triggers one refresh and one retry
        sink.write([upsert_record("c-1", {"age": (11, T0 + 11)})])
        assert crm.token_requests == 3
        assert visible(crm.contact("c-1")) == {"age": 11}
        assert all(r.headers["Authorization"].startswith("Bearer ") for r in crm.requests())


def test_oauth2_bad_client_secret_fails_setup(make_sink):
    with running_crm(auth="oauth2") as crm:
        auth = {**sink_options(crm)["auth"], "client_secret": "wrong"}
        with pytest.raises(SinkConfigError, match="invalid_client"):
            make_sink(crm, auth=auth)


def test_403_stops_the_connector(crm, make_sink):
    sink = make_sink(crm)
    crm.inject(Fault(status=403))
    with pytest.raises(SinkConfigError, match="403"):
        sink.write([upsert_record("c-1", {"age": (1, T0)})])


def test_logs_carry_no_secret_or_full_email(make_sink, configured_log):
    with running_crm(auth="oauth2") as crm:
        sink = make_sink(crm)
        crm.expire_tokens()
        result = sink.write([upsert_record("ann.lee@example.com", {"email": ("nope", T0)})])
        assert result.rejected
        crm.inject(Fault(status=500))
        with pytest.raises(RetryableSinkError) as caught:
            sink.write([upsert_record("bo.kim@example.com", {"age": (1, T0)})])
    text = configured_log.getvalue() + str(caught.value)
    assert "HTTP Request: PUT" in text  # httpx logged the URLs, masked
    assert crm.secret not in text
    for address in ("ann.lee@example.com", "bo.kim@example.com"):
        assert address not in text
        assert address.replace("@", "%40") not in text  # httpx logs URLs


# -- configuration --------------------------------------------------------------------------


def test_invalid_options_never_echo_secrets(tmp_path):
    options = {
        "base_url": "http://127.0.0.1:1",
        "mapping": [{"from_property": "a", "to_field": "a"}],
        "auth": {"type": "api_key", "key": "TOP-SECRET", "keyy": "TOP-SECRET"},
    }
    with pytest.raises(SinkConfigError) as caught:
        RestSink(options, name="x", settings=Settings(data_dir=tmp_path))
    assert "auth.api_key.keyy" in str(caught.value)
    assert "TOP-SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"mapping": [{"from_property": "a", "to_field": "id"}]},
        {"on_delete": "property"},
        {"upsert": {"path": "/people/{contact_id}"}},
        {"mode": "create_or_update", "create_or_update": {"search_by": "email"}},
        {"extra_option": 1},
    ],
)
def test_inconsistent_options_are_refused(tmp_path, overrides):
    options = {"base_url": "http://h", "mapping": [{"from_property": "a", "to_field": "a"}]}
    with pytest.raises(SinkConfigError):
        RestSink({**options, **overrides}, name="x", settings=Settings(data_dir=tmp_path))


def test_example_config_builds_a_rest_sink(monkeypatch, tmp_path):
    for variable in ("CRM_CLIENT_ID", "CRM_CLIENT_SECRET"):
        monkeypatch.setenv(variable, "from-env")
    config = load_config(ROOT / "connectors" / "rest.example.toml")
    sink = build_sink(config, Settings(data_dir=tmp_path))
    assert isinstance(sink, RestSink)
    assert sink.state_path == tmp_path / f"connect-{config.name}"


# -- with the connector worker on a real broker ---------------------------------------------


def test_connector_worker_delivers_retries_and_parks_refused_records(
    streams_settings, crm, tmp_path
):
    settings = streams_settings()
    config = ConnectorConfig(
        name="crm-e2e",
        type="rest",
        batch=BatchConfig(max_records=50, max_wait_ms=200),
        retry=RetryConfig(initial_backoff_ms=20, max_backoff_ms=100),
    )
    dlq = config.dead_letter_topic(settings)
    ensure_topic(settings, dlq)
    items = [
        Upsert(
            f"c-{i % 10}",
            Op.UPSERT,
            {"age": PropertyState(i, T0 + i, "crm")},
            None,
            "crm",
            None,
            T0,
        )
        for i in range(200)
    ]
    refused = Upsert(
        "c-bad", Op.UPSERT, {"email": PropertyState("nope", T0, "crm")}, None, "crm", None, T0
    )
    codec = UpsertCodec(settings.output_format)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    for item in [*items, refused]:
        producer.produce(settings.upserts_topic, codec.encode(item), item.customer_id.encode())
    producer.flush(30)
    crm.inject(Fault(status=429, retry_after="0.2"))
    crm.inject(Fault(status=503))
    sink = RestSink(
        sink_options(crm, state_dir=str(tmp_path / "state"), max_concurrency=1),
        name=config.name,
        settings=settings,
    )
    worker = ConnectorWorker(config, settings, sink)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: worker.totals.written + worker.totals.rejected >= len(items) + 1)
    finally:
        worker.stop()
        thread.join(60)
    assert worker.error is None
    assert worker.totals.retries >= 2
    assert {c["id"]: c.get("age") for c in crm.contacts()} == {f"c-{k}": 190 + k for k in range(10)}
    (parked,) = read_topic(settings, dlq)
    assert parked.headers["dlq.reason"] == b"invalid_email"
