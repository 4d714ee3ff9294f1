"""One email address rule for every path that takes an address (AMQP, change logs, bootstrap).

An address is the WHATWG (HTML) "valid email address", at most 254 characters: ASCII only, a
local part of ``[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]``, then ``@`` and at least two dot-separated
labels of letters, digits and inner hyphens (``a@localhost`` is no address). The bootstrap's
Rust converter (``email_ok`` in native/src/csvfast/cells.rs) accepts exactly this language; a
path may trim or lower-case an address, but only after this check, so that one address is
accepted or refused alike wherever it arrives.
"""

from __future__ import annotations

import re

EMAIL_MAX = 254
EMAIL_PATTERN = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)


def is_email(text: str) -> bool:
    """``text`` as it stands (not trimmed) is an address."""
    return len(text) <= EMAIL_MAX and EMAIL_PATTERN.fullmatch(text) is not None
