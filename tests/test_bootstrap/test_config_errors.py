"""Configuration errors: what is wrong and where, the mapping option that fixes it (with the
value to try), and never a word about resuming a job that did not start."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from streams.bootstrap.cli import run_bootstrap
from streams.bootstrap.hints import delimiter_hint, encoding_hint
from streams.bootstrap.job import BootstrapJob
from streams.bootstrap.mapping import parse_mapping
from streams.bootstrap.open_source import open_source
from streams.bootstrap.plan import JobOptions
from streams.bootstrap.report import Status
from streams.errors import ConfigError
from streams.settings import Settings
from tests.test_bootstrap.bootstrap_helpers import BASIC_MAPPING, mapping_of

HEADER = "id,name,email,age\n"
ROWS = "c-1,Jana,jana@example.com,30\nc-2,Eva,eva@example.com,41\n"


def bootstrap(tmp_path: Path, source: Path | str, mapping: Any = None, **options: Any) -> str:
    """Run the command's function as the CLI does (no job id given), expecting exit 2 and no
    checkpoint; the text it printed."""
    mapping_path = tmp_path / "mapping.json"
    if not isinstance(mapping, Path):
        mapping_path.write_bytes(orjson.dumps(BASIC_MAPPING if mapping is None else mapping))
    out = io.StringIO()
    checkpoints = tmp_path / "checkpoints"
    code = run_bootstrap(
        str(source),
        mapping if isinstance(mapping, Path) else mapping_path,
        checkpoint_dir=checkpoints,
        # Nothing reaches a broker: every error comes before the first row.
        settings=Settings(kafka_bootstrap_servers="127.0.0.1:9"),
        progress=False,
        console=Console(file=out, width=400),
        **options,
    )
    text = out.getvalue()
    assert code == 2, text
    assert "resum" not in text
    assert "--job-id" not in text
    assert not checkpoints.exists() or not any(checkpoints.glob("*.json"))
    return text


def csv_file(tmp_path: Path, data: bytes | str, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_a_bad_mapping_names_the_file_and_the_field(tmp_path: Path) -> None:
    text = bootstrap(tmp_path, csv_file(tmp_path, HEADER + ROWS), {**BASIC_MAPPING, "ids": []})
    assert f"invalid mapping {tmp_path / 'mapping.json'}: ids:" in text


def test_an_unknown_mapping_option_names_the_one_it_resembles(tmp_path: Path) -> None:
    text = bootstrap(
        tmp_path, csv_file(tmp_path, HEADER + ROWS), {**BASIC_MAPPING, "delimiter": ";"}
    )
    assert "'delimiter' is not an option: did you mean 'csv_delimiter'?" in text
    with pytest.raises(ConfigError, match=r"the options are .*csv_delimiter.*encoding"):
        parse_mapping({**BASIC_MAPPING, "separator": ";"})


def test_a_missing_mapping_or_source_file(tmp_path: Path) -> None:
    source = csv_file(tmp_path, HEADER + ROWS)
    text = bootstrap(tmp_path, source, tmp_path / "nowhere.json")
    assert f"cannot read the mapping {tmp_path / 'nowhere.json'}" in text
    text = bootstrap(tmp_path, tmp_path / "missing.csv")
    assert f"cannot read the source {tmp_path / 'missing.csv'}: No such file or directory" in text


def test_an_empty_csv(tmp_path: Path) -> None:
    empty = csv_file(tmp_path, "")
    assert f"{empty} is empty: a header line is required" in bootstrap(tmp_path, empty)


def test_a_column_the_source_lacks(tmp_path: Path) -> None:
    source = csv_file(tmp_path, "id,name\nc-1,Jana\n")
    text = bootstrap(tmp_path, source)
    assert f"{source}: column(s) email, age not in the source; it has: id, name" in text
    assert "csv_delimiter" not in text  # nothing suggests another delimiter


@pytest.mark.parametrize(
    ("change", "options", "message"),
    [
        ({"encoding": "latin-9x"}, {}, "encoding: not a text encoding"),
        ({"encoding": "base64"}, {}, "encoding: not a text encoding"),
        ({"csv_delimiter": '"'}, {}, "csv_delimiter: one character other than a quote"),
        ({"csv_delimiter": "semicolon"}, {}, "csv_delimiter"),
        ({}, {"max_reject_share": 2.0}, "--max-reject-share must be between 0 and 1"),
        ({}, {"since": "24h"}, "--since needs modified_at_column in the mapping"),
        ({}, {"job_id": "a/b"}, "job id 'a/b': letters, digits"),
    ],
)
def test_bad_options(
    tmp_path: Path, change: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    source = csv_file(tmp_path, HEADER + ROWS)
    assert message in bootstrap(tmp_path, source, {**BASIC_MAPPING, **change}, **options)


def test_a_semicolon_file_read_at_commas_suggests_the_delimiter(tmp_path: Path) -> None:
    source = csv_file(tmp_path, HEADER.replace(",", ";") + ROWS.replace(",", ";"))
    text = bootstrap(tmp_path, source)
    assert "column(s) id, name, email, age not in the source; it has: id;name;email;age" in text
    assert 'set "csv_delimiter": ";" in the mapping' in text


def test_delimiter_hints() -> None:
    assert 'set "csv_delimiter": "\\t"' in delimiter_hint(["id\tname"], ["id", "name"], ",")
    assert 'set "csv_delimiter": "|"' in delimiter_hint(['"id"|"name"'], ["name"], ",")
    assert 'set "csv_delimiter": ","' in delimiter_hint(["id,name", "x"], ["name"], ";")
    assert delimiter_hint(["id;name"], ["email"], ",") == ""  # not among the split names
    assert delimiter_hint(["id", "name"], ["email"], ",") == ""


def test_a_windows_export_read_as_utf8_suggests_the_encoding(tmp_path: Path) -> None:
    header = "id,name,email,age,mesto\n"
    source = csv_file(tmp_path, (header.replace("mesto", "sídlo") + ROWS).encode("cp1250"))
    text = bootstrap(tmp_path, source)
    assert f"{source} is not utf-8 text (line 1: invalid continuation byte)" in text
    assert 'set "encoding" in the mapping' in text
    assert '"windows-1250"' in text


def _decode_error(data: bytes, encoding: str) -> UnicodeDecodeError:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("decoded")


def test_encoding_hints() -> None:
    utf16 = "id,name\n".encode("utf-16")
    assert encoding_hint(_decode_error(utf16, "utf-8-sig")).endswith('e.g. "utf-16"')
    utf8 = "id,meno\nc-1,Košice\n".encode()
    assert encoding_hint(_decode_error(utf8, "ascii")).endswith('e.g. "utf-8"')
    cp1250 = "id,meno\nc-1,Košice\n".encode("cp1250")
    hint = encoding_hint(_decode_error(cp1250, "utf-8"))
    assert hint.startswith('; set "encoding" in the mapping to the file\'s encoding, e.g. ')
    assert '"windows-1250"' in hint
    assert cp1250.decode("windows-1250") == "id,meno\nc-1,Košice\n"  # the value it suggests


def test_undecodable_rows_after_the_start_fail_the_job_without_a_resume(
    streams_settings, run_job, tmp_path: Path
) -> None:
    """Past the header the job has started, so it fails (exit 1) with the encoding to set; a
    resume would meet the same bytes (and refuses a changed mapping), so none is suggested."""
    # Past the header's first read (8 KiB, checked before the start), so the job has started.
    good = "".join(f"c-{n},Jana,j@example.com,3\n" for n in range(1000))
    bad = "c-x,Košice,k@example.com,3\n".encode("cp1250")
    source = csv_file(tmp_path, (HEADER + good).encode() + bad)
    _, report = run_job(streams_settings(), source, mapping_of())
    assert report.status is Status.FAILED
    assert report.error is not None
    assert "is not utf-8 text (line 1002: invalid start byte)" in report.error
    assert 'set "encoding" in the mapping' in report.error
    assert not report.resumable


def test_a_job_stopped_part_way_is_resumable(streams_settings, tmp_path: Path) -> None:
    source = csv_file(tmp_path, HEADER + ROWS)
    options = JobOptions(job_id="halted", checkpoint_dir=tmp_path / "checkpoints")
    job = BootstrapJob(
        streams_settings(), mapping_of(), lambda _: open_source(str(source)), options
    )
    job.stop()  # asked before its first chunk: it stops there, checkpointed
    report = job.run()
    assert report.status is Status.INTERRUPTED
    assert report.resumable
