"""The file sink: exact content, rotation, atomic visibility, idempotent replays, errors."""

from __future__ import annotations

import errno
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codecs.timestamps import MAX_EPOCH_MS
from streams.connect.config import build_sink, load_config
from streams.connect.errors import RetryableSinkError, SinkConfigError
from streams.connect.records import SinkRecord
from streams.connect.sinks.file import FileSink, file_pattern, read_jsonl, visible_files
from streams.merge import MergePolicy, apply_event, upsert_as_event
from streams.model import UNKNOWN_TS, Op, Profile, PropertyState, Upsert
from streams.settings import Settings

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z, at the start of no 300 s window
STAMP = "20231114T221320Z"
EXAMPLE = Path(__file__).resolve().parents[2] / "connectors" / "file.example.toml"


def upsert(
    customer: str = "c-1",
    properties: dict[str, Any] | None = None,
    *,
    op: Op = Op.UPSERT,
    deleted_at: int | None = None,
    source: str = "crm",
    event_id: str | None = "e-1",
    processed_at: int = T0,
    last_update: int = T0,
) -> Upsert:
    states = {
        name: item if isinstance(item, PropertyState) else PropertyState(item, last_update, source)
        for name, item in (properties or {}).items()
    }
    return Upsert(customer, op, states, deleted_at, source, event_id, processed_at)


def record(partition: int, offset: int, item: Upsert) -> SinkRecord:
    key = item.customer_id.encode()
    return SinkRecord("profile-upserts", partition, offset, key, b"avro-bytes", item)


def records(items: Iterable[Upsert], *, partition: int = 0, start: int = 0) -> list[SinkRecord]:
    return [record(partition, start + i, item) for i, item in enumerate(items)]


def make_sink(directory: Path, name: str = "exports", **options: Any) -> FileSink:
    sink = FileSink({"directory": str(directory), **options}, name=name, settings=Settings())
    sink.setup()
    return sink


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def contents(directory: Path, prefix: str = "exports") -> list[bytes]:
    return [path.read_bytes() for path in visible_files(directory, prefix)]


def offsets(path: Path) -> tuple[int, int]:
    match = file_pattern("exports").fullmatch(path.name)
    assert match is not None, path.name
    return int(match.group(2)), int(match.group(3))


def profiles(items: Iterable[Upsert]) -> dict[str, Profile]:
    state: dict[str, Profile] = {}
    for item in items:
        apply_event(
            state.setdefault(item.customer_id, Profile()), upsert_as_event(item), MergePolicy()
        )
    return state


SAMPLE = [
    upsert(
        "c-1",
        {
            "first_name": PropertyState("Marian", T0 - 1000, "crm"),
            "city": PropertyState(None, T0 + 250, "crm"),
        },
    ),
    upsert(
        "c-2",
        op=Op.DELETE,
        deleted_at=T0 + 500,
        source="gdpr",
        event_id=None,
        processed_at=T0 + 1000,
    ),
    upsert(
        "c-3",
        {
            "first_name": PropertyState('Smith, "Jo"', T0, "hr"),
            "vip": PropertyState(True, UNKNOWN_TS, "hr"),
            "score": PropertyState(1.5, T0, "hr"),
        },
        source="hr",
        event_id="e-3",
    ),
]


# --- content ------------------------------------------------------------------------------


def test_jsonl_content_is_exact_without_timestamps(tmp_path):
    sink = make_sink(tmp_path)
    assert sink.write(records(SAMPLE, start=10)).rejected == []
    assert names(tmp_path) == [f"exports-p00000-{10:020d}-{12:020d}-{STAMP}.jsonl"]
    assert contents(tmp_path) == [
        b'{"customer_id":"c-1","op":"upsert","properties":{"first_name":"Marian","city":null},'
        b'"deleted_at":null,"source":"crm","event_id":"e-1","processed_at":1700000000}\n'
        b'{"customer_id":"c-2","op":"delete","properties":{},"deleted_at":1700000000.5,'
        b'"source":"gdpr","event_id":null,"processed_at":1700000001}\n'
        b'{"customer_id":"c-3","op":"upsert","properties":{"first_name":"Smith, \\"Jo\\"",'
        b'"vip":true,"score":1.5},"deleted_at":null,"source":"hr","event_id":"e-3",'
        b'"processed_at":1700000000}\n'
    ]


def test_jsonl_content_is_exact_with_timestamps_in_seconds(tmp_path):
    sink = make_sink(tmp_path, include_timestamps=True)
    sink.write(records(SAMPLE[:1]))
    assert contents(tmp_path) == [
        b'{"customer_id":"c-1","op":"upsert","properties":{'
        b'"first_name":{"value":"Marian","last_update":1699999999},'
        b'"city":{"value":null,"last_update":1700000000.25}},'
        b'"deleted_at":null,"source":"crm","event_id":"e-1","processed_at":1700000000}\n'
    ]


def test_csv_content_is_exact_with_timestamps(tmp_path):
    sink = make_sink(
        tmp_path, format="csv", csv_columns=["first_name", "city", "vip"], include_timestamps=True
    )
    sink.write(records(SAMPLE, start=10))
    assert names(tmp_path) == [f"exports-p00000-{10:020d}-{12:020d}-{STAMP}.csv"]
    assert contents(tmp_path) == [
        b"customer_id,op,deleted_at,source,event_id,processed_at,first_name,"
        b"first_name_last_update,city,city_last_update,vip,vip_last_update\r\n"
        b"c-1,upsert,,crm,e-1,1700000000,Marian,1699999999,,1700000000.25,,\r\n"
        b"c-2,delete,1700000000.5,gdpr,,1700000001,,,,,,\r\n"
        b'c-3,upsert,,hr,e-3,1700000000,"Smith, ""Jo""",1700000000,,,true,-1\r\n'
    ]


def test_csv_content_is_exact_without_timestamps(tmp_path):
    sink = make_sink(tmp_path, format="csv", csv_columns=["score", "vip"])
    sink.write(records(SAMPLE[2:]))
    assert contents(tmp_path) == [
        b"customer_id,op,deleted_at,source,event_id,processed_at,score,vip\r\n"
        b"c-3,upsert,,hr,e-3,1700000000,1.5,true\r\n"
    ]


def test_a_non_finite_number_is_rejected_and_the_rest_written(tmp_path):
    sink = make_sink(tmp_path)
    batch = records([upsert("c-1", {"a": 1}), upsert("c-2", {"a": math.nan})])
    result = sink.write(batch)
    assert [(r.record.offset, r.reason) for r in result.rejected] == [(1, "bad_value")]
    assert names(tmp_path) == [f"exports-p00000-{0:020d}-{0:020d}-{STAMP}.jsonl"]


def test_files_are_readable_as_the_umask_allows(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    make_sink(tmp_path).write(records(SAMPLE))
    (path,) = visible_files(tmp_path, "exports")
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_prefix_defaults_to_the_connector_name(tmp_path):
    make_sink(tmp_path, name="crm-export").write(records(SAMPLE[:1]))
    make_sink(tmp_path, name="other", prefix="nightly").write(records(SAMPLE[:1]))
    assert [path.name.split("-p0")[0] for path in visible_files(tmp_path, "crm-export")] == [
        "crm-export"
    ]
    assert len(visible_files(tmp_path, "nightly")) == 1


# --- files, order, rotation -----------------------------------------------------------------


def test_one_file_per_partition_and_sorted_names_are_the_apply_order(tmp_path):
    sink = make_sink(tmp_path)
    batch = [
        record(1, 7, upsert("c-1", {"n": 1})),
        record(0, 3, upsert("c-2", {"n": 2})),
        record(1, 8, upsert("c-1", {"n": 3})),
        record(0, 4, upsert("c-2", {"n": 4})),
    ]
    sink.write(batch)
    sink.write([record(0, 5, upsert("c-2", {"n": 5}))])
    files = visible_files(tmp_path, "exports")
    assert [path.name.rsplit("-", 1)[0] for path in files] == [
        f"exports-p00000-{3:020d}-{4:020d}",
        f"exports-p00000-{5:020d}-{5:020d}",
        f"exports-p00001-{7:020d}-{8:020d}",
    ]
    assert [[u.properties["n"].value for u in read_jsonl(path)] for path in files] == [
        [2, 4],
        [5],
        [1, 3],
    ]


def test_rotation_by_size_splits_a_flush_without_losing_order(tmp_path):
    items = [upsert(f"c-{i}", {"note": "x" * 100, "i": i}) for i in range(20)]
    whole, split = tmp_path / "whole", tmp_path / "split"
    make_sink(whole).write(records(items))
    make_sink(split, rotate_bytes=600).write(records(items))
    files = visible_files(split, "exports")
    assert len(files) > 2
    assert all(path.stat().st_size <= 600 for path in files)
    assert b"".join(contents(split)) == b"".join(contents(whole))
    ranges = [offsets(path) for path in files]
    assert [first for first, _ in ranges] == [0] + [last + 1 for _, last in ranges[:-1]]
    assert ranges[-1][1] == 19


def test_a_record_larger_than_rotate_bytes_gets_a_file_of_its_own(tmp_path):
    items = [upsert("c-1", {"a": 1}), upsert("c-2", {"big": "y" * 500}), upsert("c-3", {"a": 3})]
    make_sink(tmp_path, rotate_bytes=400).write(records(items))
    assert [len(read_jsonl(path)) for path in visible_files(tmp_path, "exports")] == [1, 1, 1]


def test_rotation_by_time_cuts_at_epoch_aligned_windows(tmp_path):
    boundary = (T0 // 300_000 + 1) * 300_000
    times = [T0, boundary - 1, boundary, boundary + 299_999, boundary + 300_000]
    items = [upsert(f"c-{i}", {"i": i}, processed_at=t) for i, t in enumerate(times)]
    make_sink(tmp_path, rotate_seconds=300).write(records(items))
    files = visible_files(tmp_path, "exports")
    assert [[u.properties["i"].value for u in read_jsonl(path)] for path in files] == [
        [0, 1],
        [2, 3],
        [4],
    ]
    assert [path.name[-22:-6] for path in files] == [
        STAMP,
        "20231114T221500Z",
        "20231114T222000Z",
    ]


# --- atomicity ------------------------------------------------------------------------------


def test_a_reader_polling_the_directory_never_sees_a_partial_file(tmp_path):
    pattern = file_pattern("exports")
    stop = threading.Event()
    seen: set[str] = set()
    problems: list[str] = []

    def poll() -> None:
        while not stop.is_set():
            for name in os.listdir(tmp_path):
                match = pattern.fullmatch(name)
                if match is None:
                    if not (name.startswith(".exports-") and name.endswith(".tmp")):
                        problems.append(f"unexpected file {name}")
                    continue
                data = (tmp_path / name).read_bytes()
                first, last = int(match.group(2)), int(match.group(3))
                lines = data.split(b"\n")
                if lines[-1] != b"" or len(lines) - 1 != last - first + 1:
                    problems.append(f"partial file {name}: {len(data)} bytes")
                    continue
                try:
                    [orjson.loads(line) for line in lines[:-1]]
                except orjson.JSONDecodeError:
                    problems.append(f"unparsable file {name}")
                seen.add(name)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    sink = make_sink(tmp_path, rotate_bytes=150_000)
    offset = 0
    try:
        for _ in range(60):
            batch = [upsert(f"c-{i}", {"blob": "z" * 2000, "i": i}) for i in range(100)]
            sink.write(records(batch, start=offset))
            offset += len(batch)
    finally:
        stop.set()
        reader.join(10)
    assert problems == []
    assert len(seen) > 10, "the reader raced the writer"
    assert len(visible_files(tmp_path, "exports")) == len(names(tmp_path))


# --- replays --------------------------------------------------------------------------------


def test_a_replayed_batch_overwrites_the_same_file(tmp_path):
    batch = records(SAMPLE, start=100)
    make_sink(tmp_path).write(batch)
    before = {name: (tmp_path / name).read_bytes() for name in names(tmp_path)}
    make_sink(tmp_path).write(batch)  # a new worker after a crash before the commit
    make_sink(tmp_path).write(batch + batch[:2])  # and one whose batch holds a duplicate
    after = {name: (tmp_path / name).read_bytes() for name in names(tmp_path)}
    assert after == before
    assert len(after) == 1


def test_a_replay_with_other_batch_boundaries_still_rebuilds_the_profiles(tmp_path):
    items = [
        upsert(f"c-{i % 3}", {"n": i}, last_update=T0 + i, processed_at=T0 + i) for i in range(30)
    ]
    sink = make_sink(tmp_path, include_timestamps=True)
    sink.write(records(items[:10]))
    sink.write(records(items[:15]))  # crashed before the commit: replayed in a bigger batch
    sink.write(records(items[15:], start=15))
    files = visible_files(tmp_path, "exports")
    assert len(files) == 3
    replayed = [item for path in files for item in read_jsonl(path)]
    assert profiles(replayed) == profiles(items)


# --- failures -------------------------------------------------------------------------------


def _disk_full(*args: Any, **kwargs: Any) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("call", ["fsync", "replace"])
def test_a_disk_error_is_retryable_and_leaves_no_temp_file(tmp_path, monkeypatch, call):
    sink = make_sink(tmp_path)
    monkeypatch.setattr(os, call, _disk_full)
    with pytest.raises(RetryableSinkError, match="No space left on device"):
        sink.write(records(SAMPLE))
    monkeypatch.undo()
    assert names(tmp_path) == []


def test_a_retry_after_a_partial_failure_leaves_what_a_clean_write_leaves(tmp_path, monkeypatch):
    batch = [record(p, 0, upsert(f"c-{p}", {"p": p})) for p in range(3)]
    clean = tmp_path / "clean"
    make_sink(clean).write(batch)
    target = tmp_path / "target"
    sink = make_sink(target)
    real_replace = os.replace
    calls = []

    def fail_second(src: Any, dst: Any) -> None:
        calls.append(dst)
        if len(calls) == 2:
            _disk_full()
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(RetryableSinkError):
        sink.write(batch)
    monkeypatch.undo()
    assert len(names(target)) == 1, "the first file is complete; no temp file is left"
    sink.write(batch)
    assert names(target) == names(clean)
    assert contents(target) == contents(clean)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_directory_is_retryable(tmp_path):
    sink = make_sink(tmp_path)
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(RetryableSinkError, match="Permission denied"):
            sink.write(records(SAMPLE))
    finally:
        tmp_path.chmod(0o700)
    assert names(tmp_path) == []


def test_setup_creates_the_directory_and_removes_only_stale_own_temp_files(tmp_path):
    directory = tmp_path / "a" / "b"
    directory.mkdir(parents=True)
    old = time.time() - 7200
    for name in (".exports-0123456789abcdef.tmp", ".exports-x-0123456789abcdef.tmp"):
        (directory / name).write_bytes(b"half")
        os.utime(directory / name, (old, old))
    (directory / ".exports-fedcba9876543210.tmp").write_bytes(b"in progress elsewhere")
    make_sink(directory)
    assert names(directory) == [".exports-fedcba9876543210.tmp", ".exports-x-0123456789abcdef.tmp"]
    make_sink(tmp_path / "new" / "dir")
    assert (tmp_path / "new" / "dir").is_dir()


# --- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "directory: Field required"),
        ({"directory": " "}, "directory: must not be empty"),
        ({"format": "parquet"}, "format: Input should be 'jsonl' or 'csv'"),
        ({"format": "csv"}, 'format = "csv" needs csv_columns'),
        ({"csv_columns": ["a"]}, 'csv_columns only applies to format = "csv"'),
        ({"format": "csv", "csv_columns": ["a", ""]}, "must not contain an empty name"),
        ({"format": "csv", "csv_columns": ["a", "a"]}, "duplicate CSV columns: a"),
        ({"format": "csv", "csv_columns": ["source"]}, "duplicate CSV columns: source"),
        (
            {"format": "csv", "csv_columns": ["a", "a_last_update"], "include_timestamps": True},
            "duplicate CSV columns: a_last_update",
        ),
        ({"rotate_bytes": 0}, "rotate_bytes: Input should be greater than or equal to 1"),
        ({"rotate_seconds": -5}, "rotate_seconds: Input should be greater than or equal to 1"),
        ({"prefix": "../up"}, "prefix: String should match pattern"),
        ({"prefix": ".hidden"}, "prefix: String should match pattern"),
        ({"rotate_byte": 5}, "rotate_byte: Extra inputs are not permitted"),
    ],
)
def test_invalid_options_are_explained(tmp_path, options, message):
    base = {} if options == {} else {"directory": str(tmp_path)}
    with pytest.raises(SinkConfigError, match=r"^file sink 'exports': ") as caught:
        FileSink({**base, **options}, name="exports", settings=Settings())
    assert message in str(caught.value)


def test_the_example_config_builds_a_file_sink():
    config = load_config(EXAMPLE)
    sink = build_sink(config, Settings())
    assert isinstance(sink, FileSink)
    assert config.type == "file"
    assert sink.prefix == config.name


# --- roundtrip ------------------------------------------------------------------------------

_TIMESTAMPS = st.one_of(st.just(UNKNOWN_TS), st.integers(0, MAX_EPOCH_MS))
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


@st.composite
def _upserts(draw: st.DrawFn) -> Upsert:
    source = draw(st.text(min_size=1, max_size=8))
    op = draw(st.sampled_from(Op))
    properties: dict[str, PropertyState] = {}
    if op is Op.UPSERT:
        names_ = draw(st.lists(st.text(max_size=8), max_size=4, unique=True))
        properties = {n: PropertyState(draw(_VALUES), draw(_TIMESTAMPS), source) for n in names_}
    return Upsert(
        customer_id=draw(st.text(max_size=12)),
        op=op,
        properties=properties,
        deleted_at=draw(_TIMESTAMPS) if op is Op.DELETE else None,
        source=source,
        event_id=draw(st.none() | st.text(max_size=8)),
        processed_at=draw(st.integers(0, MAX_EPOCH_MS)),
    )


def _exact(items: Sequence[Upsert], timestamps: bool) -> list[tuple[Any, ...]]:
    # repr tells 1 from 1.0 from True and -0.0 from 0.0, which == does not.
    return [
        (
            *item._replace(properties={}),
            [
                (n, repr(s.value), s.last_update if timestamps else UNKNOWN_TS, s.source)
                for n, s in item.properties.items()
            ],
        )
        for item in items
    ]


@settings(max_examples=150, deadline=None)
@given(
    batch=st.lists(st.tuples(st.integers(0, 3), _upserts()), max_size=25),
    include_timestamps=st.booleans(),
    rotate_bytes=st.integers(1, 2000),
)
def test_any_batch_written_as_jsonl_reads_back_equal(batch, include_timestamps, rotate_bytes):
    sink_records = [
        record(partition, offset, item) for offset, (partition, item) in enumerate(batch)
    ]
    with tempfile.TemporaryDirectory() as directory:
        sink = make_sink(
            Path(directory), include_timestamps=include_timestamps, rotate_bytes=rotate_bytes
        )
        assert sink.write(sink_records).rejected == []
        read = [
            item for path in visible_files(Path(directory), "exports") for item in read_jsonl(path)
        ]
    in_apply_order = [r.upsert for r in sorted(sink_records, key=lambda r: (r.partition, r.offset))]
    assert _exact(read, True) == _exact(in_apply_order, include_timestamps)
