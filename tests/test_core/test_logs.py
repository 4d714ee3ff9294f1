"""Logs never carry a secret, a full email address or a control character from a request."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from streams.logs import configure_logging, escape_controls, mask_dsn, mask_emails, redact
from streams.settings import Settings

NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
# Passwords of any printable character, the URL delimiters above all.
PASSWORDS = st.text(
    st.one_of(st.sampled_from("@:/%?#&=' \\"), st.characters(min_codepoint=0x21)),
    min_size=1,
    max_size=24,
)


def test_email_addresses_are_masked_to_their_first_letter_and_domain():
    assert mask_emails("contact marian.galik@example.com failed") == (
        "contact m***@example.com failed"
    )
    assert mask_emails("GET /customers/marian.galik%40example.com") == (
        "GET /customers/m***@example.com"
    )
    assert mask_emails("no address here") == "no address here"


def test_secrets_in_urls_and_parameters_are_masked():
    line = redact(
        "GET https://bob:pa:ss@w0rd@origin.example/api?id=7&token=abc&api_key=k1"
        "&Signature=s1&access_token=t1&limit=5 Authorization: Bearer eyJ.x-y"
    )
    assert line == (
        "GET https://bob:***@origin.example/api?id=7&token=***&api_key=***"
        "&Signature=***&access_token=***&limit=5 Authorization: Bearer ***"
    )
    # Keys name secrets by a part or an ending; other keys (assigned, keys) keep their values.
    assert redact("x?accessToken=a&clientSecret=b&privateKey=c&X-Amz-Signature=d&sig=e") == (
        "x?accessToken=***&clientSecret=***&privateKey=***&X-Amz-Signature=***&sig=***"
    )
    assert redact("connector=crm assigned=[0, 1] keys=3 password='a b' reason=origin_auth") == (
        "connector=crm assigned=[0, 1] keys=3 password=*** reason=origin_auth"
    )
    # A port is not a password, an email in the query is not userinfo.
    url = "http://127.0.0.1:8080/x?email=a.person@example.com"
    assert redact(url) == "http://127.0.0.1:8080/x?email=a***@example.com"


def test_control_characters_are_escaped():
    assert escape_controls("a\nb\r\tc\x00d\x1b\x7f\u2028") == "a\\nb\\r\\tc\\x00d\\x1b\\x7f\\u2028"
    assert escape_controls("tb\n\x00", keep_newlines=True) == "tb\n\\x00"


def test_mask_dsn_masks_a_password_holding_the_url_delimiters():
    assert mask_dsn("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db"
    assert mask_dsn("postgresql://app:s3cret@db:5432/crm") == "postgresql://app:***@db:5432/crm"
    assert mask_dsn("postgresql://app@db/crm?password=x&sslmode=require") == (
        "postgresql://app@db/crm?password=***&sslmode=require"
    )
    assert mask_dsn("postgresql://db:5432/crm") == "postgresql://db:5432/crm"
    assert mask_dsn("host=db password='a b' user=x") == "host=db password=*** user=x"


@given(user=NAMES, password=PASSWORDS, host=NAMES, db=NAMES)
def test_mask_dsn_url_keeps_host_and_database_and_never_the_password(user, password, host, db):
    masked = mask_dsn(f"postgresql://{user}:{password}@{host}:5432/{db}")
    assert masked == f"postgresql://{user}:***@{host}:5432/{db}"


@given(password=PASSWORDS, host=NAMES, db=NAMES)
def test_mask_dsn_keyword_form_hides_any_quoted_or_escaped_password(password, host, db):
    quoted = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
    escaped = "".join("\\" + c if c in " '\\" else c for c in password)
    for value in (quoted, escaped):
        masked = mask_dsn(f"host={host} password={value} dbname={db}")
        assert conninfo_to_dict(masked) == {"host": host, "password": "***", "dbname": db}


def test_the_configured_handler_redacts_every_logger(configured_log):
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "HTTP/1.1 200 OK"',
        "GET",
        "http://origin/api/ada.lovelace%40example.com?token=s3cr3t&email=ada.lovelace@example.com",
    )
    logging.getLogger("streams.test").warning("rejected id=%s", "x\nlevel=ERROR forged\x00")
    try:
        raise ValueError("cannot reach postgresql://app:hunter2@db/crm")
    except ValueError:
        logging.getLogger("streams.test").exception("failed")
    text = configured_log.getvalue()
    for secret in ("s3cr3t", "ada.lovelace", "hunter2", "\x00"):
        assert secret not in text
    assert "?token=***&email=a***@example.com" in text
    assert "id=x\\nlevel=ERROR forged\\x00" in text
    assert not any("forged" in line and "id=x" not in line for line in text.splitlines())
    assert "postgresql://app:***@db/crm" in text


def json_log_lines(emit) -> list[dict[str, object]]:
    """What ``emit()`` logs through ``configure_logging(log_format="json")``, parsed line by
    line (every line must be one JSON object)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream, log_format="json")
    try:
        emit()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_extra_fields_and_traceback():
    log = logging.getLogger("streams.test")

    def emit() -> None:
        log.info("progress events=%d", 5, extra={"events": 5, "events_per_s": 2.5})
        try:
            raise ValueError("broken")
        except ValueError:
            log.exception("failed batch=%d", 7)

    progress, failure = json_log_lines(emit)
    assert datetime.fromisoformat(str(progress.pop("ts"))).utcoffset() == UTC.utcoffset(None)
    assert progress == {
        "level": "INFO",
        "logger": "streams.test",
        "message": "progress events=5",
        "events": 5,
        "events_per_s": 2.5,
    }
    assert (failure["level"], failure["message"]) == ("ERROR", "failed batch=7")
    traceback = str(failure["traceback"])
    assert traceback.startswith("Traceback (most recent call last):")
    assert traceback.endswith("ValueError: broken")


def test_json_lines_are_redacted_and_stay_one_line_each():
    log = logging.getLogger("streams.test")

    def emit() -> None:
        log.warning("login marian.galik@example.com password=hunter2 id=%s", "x\n{forged}\u2028")
        log.info(
            "sent",
            extra={
                "url": "https://bob:s3cr3t@crm.example/x?email=ada@example.com",
                "to": ["ada@example.com"],
                "count": 2,
            },
        )
        try:
            raise ValueError("cannot reach postgresql://app:hunter2@db/crm as ada@example.com")
        except ValueError:
            log.exception("failed")

    lines = json_log_lines(emit)
    assert len(lines) == 3
    text = json.dumps(lines)
    for secret in ("hunter2", "s3cr3t", "marian.galik", "ada@"):
        assert secret not in text
    assert lines[0]["message"] == ("login m***@example.com password=*** id=x\\n{forged}\\u2028")
    assert lines[1]["url"] == "https://bob:***@crm.example/x?email=a***@example.com"
    assert (lines[1]["to"], lines[1]["count"]) == ("['a***@example.com']", 2)
    assert "postgresql://app:***@db/crm as a***@example.com" in str(lines[2]["traceback"])


def test_secrets_print_masked():
    settings = Settings(kafka_sasl_password="hunter2")  # type: ignore[arg-type]
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    assert settings.kafka_config()["sasl.password"] == "hunter2"
