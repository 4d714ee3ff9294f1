"""Configuration errors say where and why, on one line, and never echo the input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from streams.errors import ConfigError
from streams.ingest.amqp.config import AmqpSourceConfig
from streams.validation import validation_problems


class Sink(BaseModel):
    dsn: SecretStr
    batch: int = Field(ge=1)
    table: str

    @field_validator("table")
    @classmethod
    def _plain(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError("a table name is letters, digits and _")
        return value


@given(secret=st.text(min_size=6).filter(lambda text: text.strip() == text))
def test_no_input_value_is_echoed(secret: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Sink.model_validate({"dsn": 5, "batch": secret, "table": secret + " x"})
    problems = validation_problems(caught.value)
    assert secret not in problems
    assert "\n" not in problems


def test_each_problem_names_its_field_and_why() -> None:
    with pytest.raises(ValidationError) as caught:
        Sink.model_validate({"dsn": "postgresql://u:p@h/db", "batch": 0, "table": "a b"})
    assert validation_problems(caught.value) == (
        "batch: Input should be greater than or equal to 1; "
        "table: a table name is letters, digits and _"
    )
    with pytest.raises(ValidationError) as whole:
        Sink.model_validate([1])
    assert validation_problems(whole.value, "sink").startswith("sink: ")


def test_an_amqp_option_error_is_one_line_without_the_url_password() -> None:
    with pytest.raises(ConfigError) as caught:
        AmqpSourceConfig.from_section(
            {"url": "amqp://u:hunter2@h/", "queue": "q"}, {"max_in_flight": 0}
        )
    assert str(caught.value) == "[amqp] max_in_flight: Input should be greater than or equal to 1"
