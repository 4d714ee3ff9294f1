"""``python -m streams.bootstrap.generate --rows 1000000 --out snapshot.csv``: a synthetic CRM
snapshot and its mapping (``snapshot.mapping.json`` unless ``--mapping`` names another path).

Columns in the style of Bloomreach's example (``idecko``, ``meno``): an id, names, an email, a
city, an age, a lifetime value, a newsletter flag, a birthday, a status (``OPT_OUT`` marks a
removal) and ``modified_at``. Optional shares of duplicate ids, bad emails and removals make
the report interesting; ``--update-timestamps`` adds an ``updated`` column (UNIX seconds).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

FIRST_NAMES = ("Marian", "Lucie", "Jana", "Peter", "Eva", "Tomas", "Zuzana", "Martin", "Ada")
LAST_NAMES = ("Galik", "Novak", "Svoboda", "Horvath", "Kovac", "Dvorak", "Varga", "Lovelace")
CITIES = ("Bratislava", "Brno", "Praha", "Kosice", "Ostrava", "Zilina", "Vienna", "Budapest")
DOMAINS = ("example.com", "example.org", "mail.example.net")
HEADER = (
    "idecko",
    "meno",
    "priezvisko",
    "email",
    "mesto",
    "vek",
    "lifetime_value",
    "newsletter",
    "birthday",
    "status",
    "modified_at",
)
SEED = 20261101
# Spread of modified_at: the last 30 days before the newest one.
MODIFIED_SPAN_SECONDS = 30 * 86_400


def sample_mapping(*, update_timestamps: bool = False) -> dict[str, Any]:
    """The mapping that fits the generated columns (and samples/customers_snapshot.csv)."""
    mapping: dict[str, Any] = {
        "ids": [{"from_column": "idecko", "to_id": "registered"}],
        "properties": [
            {"from_column": "meno", "to_property": "first_name", "type": "string"},
            {"from_column": "priezvisko", "to_property": "last_name", "type": "string"},
            {"from_column": "email", "to_property": "email", "type": "email"},
            {"from_column": "mesto", "to_property": "city", "type": "string"},
            {"from_column": "vek", "to_property": "age", "type": "int"},
            {"from_column": "lifetime_value", "to_property": "lifetime_value", "type": "float"},
            {"from_column": "newsletter", "to_property": "newsletter", "type": "bool"},
            {"from_column": "birthday", "to_property": "birthday", "type": "datetime"},
        ],
        "constant_columns": [{"to_property": "origin", "value": "crm-snapshot"}],
        "timezone": "Europe/Bratislava",
        "source": "crm-bootstrap",
        "removal": {
            "column": "status",
            "values": ["OPT_OUT"],
            "as": "property",
            "property": "email_status",
            "property_value": "opted_out",
        },
        "modified_at_column": "modified_at",
    }
    if update_timestamps:
        mapping["update_timestamp"] = {"from_column": "updated"}
    return mapping


def generate_snapshot(
    path: Path,
    rows: int,
    *,
    seed: int = SEED,
    duplicate_share: float = 0.0,
    bad_email_share: float = 0.0,
    removal_share: float = 0.0,
    update_timestamps: bool = False,
    newest: datetime | None = None,
) -> int:
    """Write ``rows`` data rows (plus a header) to ``path``; returns the distinct ids."""
    rng = random.Random(seed)
    newest_seconds = int((newest or datetime.now(UTC)).timestamp())
    header = HEADER + (("updated",) if update_timestamps else ())
    distinct = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for index in range(rows):
            if distinct and rng.random() < duplicate_share:
                number = rng.randrange(distinct)
            else:
                number = distinct
                distinct += 1
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}.{number}@{rng.choice(DOMAINS)}".lower()
            if rng.random() < bad_email_share:
                email = email.replace("@", " at ")
            modified = newest_seconds - rng.randrange(MODIFIED_SPAN_SECONDS)
            row = [
                f"c-{number:08d}",
                first,
                last,
                email,
                rng.choice(CITIES),
                str(rng.randint(18, 90)),
                f"{rng.random() * 2000:.2f}",
                rng.choice(("true", "false")),
                f"{rng.randint(1940, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "OPT_OUT" if rng.random() < removal_share else "ACTIVE",
                datetime.fromtimestamp(modified, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            ]
            if update_timestamps:
                row.append(str(modified - index % 7))
            writer.writerow(row)
    return distinct


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streams.bootstrap.generate", description=__doc__
    )
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    parser.add_argument("--mapping", type=Path, default=None, help="where to write the mapping")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of repeated ids")
    parser.add_argument("--bad-emails", type=float, default=0.0, help="share of invalid emails")
    parser.add_argument("--removals", type=float, default=0.0, help="share of OPT_OUT rows")
    parser.add_argument(
        "--update-timestamps", action="store_true", help="add an 'updated' column (UNIX seconds)"
    )
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    for share in (args.duplicates, args.bad_emails, args.removals):
        if not 0.0 <= share <= 1.0:
            parser.error("shares are between 0 and 1")
    distinct = generate_snapshot(
        args.out,
        args.rows,
        seed=args.seed,
        duplicate_share=args.duplicates,
        bad_email_share=args.bad_emails,
        removal_share=args.removals,
        update_timestamps=args.update_timestamps,
    )
    mapping_path = args.mapping or args.out.with_suffix(".mapping.json")
    mapping = sample_mapping(update_timestamps=args.update_timestamps)
    mapping_path.write_bytes(orjson.dumps(mapping, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"wrote {args.rows:,} rows ({distinct:,} ids) to {args.out}, mapping {mapping_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
