"""Logging setup: ``key=value`` lines, and no full email address ever reaches a handler."""

from __future__ import annotations

import logging
import re

NAME_CLIP = 48  # characters of a name echoed in an error detail
_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_emails(text: str) -> str:
    """``marian.galik@example.com`` -> ``m***@example.com``."""
    return _EMAIL.sub(r"\1***@\2", text)


def clip_name(name: str, limit: int = NAME_CLIP) -> str:
    """A field or property name safe to echo in an error: short, an email's local part masked."""
    at = name.find("@")
    if at >= 0:
        name = f"{name[:1]}***{name[at:]}"
    return name if len(name) <= limit else f"{name[:limit]}..."


class EmailMaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_emails(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    )
    handler.addFilter(EmailMaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
