"""Logs never carry a full email address or a secret."""

from __future__ import annotations

import logging

from streams.logs import EmailMaskingFilter, mask_emails
from streams.settings import Settings


def test_email_addresses_are_masked_to_their_first_letter_and_domain():
    assert mask_emails("contact marian.galik@example.com failed") == (
        "contact m***@example.com failed"
    )
    assert mask_emails("no address here") == "no address here"


def test_the_filter_masks_arguments_as_well_as_the_message(caplog):
    logger = logging.getLogger("test.masking")
    logger.addFilter(EmailMaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.masking"):
        logger.info("rejected email=%s", "eva.novak@example.org")
    assert "eva.novak" not in caplog.text
    assert "e***@example.org" in caplog.text


def test_secrets_print_masked():
    settings = Settings(kafka_sasl_password="hunter2")  # type: ignore[arg-type]
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    assert settings.kafka_config()["sasl.password"] == "hunter2"
