"""What the PostgreSQL sink stores, and the SQL that merges it (migrations, upsert).

A profile row keeps ``properties`` as ``{name: [value, last_update_ms, source]}``, floats as
``[value, last_update_ms, source, sign]``: jsonb keeps numbers as decimals, so the fourth item
tells a float from an integer (``1e16`` from ``10000000000000000``) and ``-0.0`` from ``0.0``.
An entry wins against the stored one when its timestamp is greater; on equal timestamps
(rare: ties and replays) a SQL function ranks the two exactly like ``MergePolicy.rank``:
source priority (the sink's current ``source_priority``, passed with each statement), the
value's kind, the value, the source. Nothing per entry is derived from the value, so an
entry is little more than the value itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import orjson

from streams.model import Profile, Upsert, Value
from streams.optional import requires

with requires("psycopg", "the PostgreSQL sink"):
    from psycopg import Connection, sql
    from psycopg.rows import TupleRow

logger = logging.getLogger(__name__)

MIGRATIONS_TABLE = "profile_streams_migrations"
MERGE_FUNCTION = "profile_streams_merge"
WINS_FUNCTION = "profile_streams_wins"
TIE_FUNCTION = "profile_streams_tie"
STAGING_TABLE = "profile_streams_staging"
VALUES_VIEW_SUFFIX = "_values"
# Serializes migrations of concurrently starting replicas (any constant; "ps" + "migr").
MIGRATION_LOCK_KEY = 0x7073_6D69_6772

CREATE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS {schema}.{migrations} (
    target text NOT NULL,
    version integer NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target, version)
)
"""

CURRENT_VERSION = "SELECT coalesce(max(version), 0) FROM {schema}.{migrations} WHERE target = %s"
RECORD_VERSION = "INSERT INTO {schema}.{migrations} (target, version) VALUES (%s, %s)"

# --- version 1: entries {"v": value, "t": last_update_ms, "k": hex rank key at t=0} ---------
# Kept as they were applied: a new table goes through every version.

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS {schema}.{table} (
    customer_id text COLLATE "C" PRIMARY KEY,
    properties jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    deleted_at bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

_V1_NEWER = """
CREATE OR REPLACE FUNCTION {schema}.profile_streams_newer(entry jsonb, stored jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $newer$
SELECT stored IS NULL
    OR ((entry ->> 't')::bigint, (entry ->> 'k') COLLATE "C")
       > ((stored ->> 't')::bigint, (stored ->> 'k') COLLATE "C")
$newer$
"""

_V1_MERGE = """
CREATE OR REPLACE FUNCTION {schema}.{merge}(
    old_properties jsonb, old_deleted_at bigint, new_properties jsonb, new_deleted_at bigint
) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $merge$
DECLARE
    watermark bigint := greatest(old_deleted_at, new_deleted_at);
    merged jsonb := old_properties;
    winners jsonb := '{{}}'::jsonb;
    name text;
    entry jsonb;
BEGIN
    IF watermark IS DISTINCT FROM old_deleted_at THEN
        SELECT coalesce(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb) INTO merged
        FROM jsonb_each(old_properties) AS e
        WHERE (e.value ->> 't')::bigint > watermark;
    END IF;
    FOR name, entry IN SELECT e.key, e.value FROM jsonb_each(new_properties) AS e LOOP
        CONTINUE WHEN watermark IS NOT NULL AND (entry ->> 't')::bigint <= watermark;
        IF {schema}.profile_streams_newer(entry, merged -> name) THEN
            winners := winners || jsonb_build_object(name, entry);
        END IF;
    END LOOP;
    RETURN merged || winners;
END
$merge$
"""

_V1_VALUES_VIEW = """
CREATE OR REPLACE VIEW {schema}.{view} AS
SELECT p.customer_id,
       coalesce(
           (SELECT jsonb_object_agg(e.key, e.value -> 'v')
              FROM jsonb_each(p.properties) AS e
             WHERE e.value -> 'v' <> 'null'::jsonb),
           '{{}}'::jsonb
       ) AS properties,
       p.deleted_at,
       p.updated_at
  FROM {schema}.{table} AS p
"""

# --- version 2: entries [value, last_update_ms, source(, sign of a float)] --------------------

# The tie-break of two entries with equal timestamps that are not the same write:
# MergePolicy.rank's order after the timestamp (priority, kind, value, sign, source).
_CREATE_TIE_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{tie}(entry jsonb, stored jsonb, priorities jsonb)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $tie$
DECLARE
    mine bigint := coalesce((priorities ->> (entry ->> 2))::bigint, 0);
    theirs bigint := coalesce((priorities ->> (stored ->> 2))::bigint, 0);
    kind integer := CASE jsonb_typeof(entry -> 0)
        WHEN 'null' THEN 0 WHEN 'boolean' THEN 1 WHEN 'string' THEN 4
        ELSE CASE WHEN jsonb_array_length(entry) > 3 THEN 3 ELSE 2 END END;
    other integer := CASE jsonb_typeof(stored -> 0)
        WHEN 'null' THEN 0 WHEN 'boolean' THEN 1 WHEN 'string' THEN 4
        ELSE CASE WHEN jsonb_array_length(stored) > 3 THEN 3 ELSE 2 END END;
BEGIN
    IF mine <> theirs THEN
        RETURN mine > theirs;
    END IF;
    IF kind <> other THEN
        RETURN kind > other;
    END IF;
    IF kind = 1 AND (entry -> 0) <> (stored -> 0) THEN
        RETURN (entry -> 0)::boolean > (stored -> 0)::boolean;
    END IF;
    IF kind IN (2, 3) AND (entry -> 0)::numeric <> (stored -> 0)::numeric THEN
        RETURN (entry -> 0)::numeric > (stored -> 0)::numeric;
    END IF;
    IF kind = 3 AND (entry ->> 3)::integer <> (stored ->> 3)::integer THEN
        RETURN (entry ->> 3)::integer > (stored ->> 3)::integer;
    END IF;
    IF kind = 4 AND (entry ->> 0) COLLATE "C" <> (stored ->> 0) COLLATE "C" THEN
        RETURN (entry ->> 0) COLLATE "C" > (stored ->> 0) COLLATE "C";
    END IF;
    RETURN (entry ->> 2) COLLATE "C" > (stored ->> 2) COLLATE "C";
END
$tie$
"""

# Whether an entry beats the stored one (none stored: it does). Plain SQL: inlined by the
# planner, so the common case (different timestamps) costs two casts; an identical entry
# (a replay) is not newer.
_CREATE_WINS_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{wins}(entry jsonb, stored jsonb, priorities jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $wins$
SELECT stored IS NULL
    OR (entry ->> 1)::bigint > (stored ->> 1)::bigint
    OR ((entry ->> 1)::bigint = (stored ->> 1)::bigint
        AND entry <> stored
        AND {schema}.{tie}(entry, stored, priorities))
$wins$
"""

# The join of two states (merge.join_profiles): per property the winning entry, then the
# watermark drops every property last updated at or before it. Old entries already satisfy
# the old watermark, so they are filtered only when the watermark rises.
_CREATE_MERGE_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{merge}(
    old_properties jsonb, old_deleted_at bigint, new_properties jsonb, new_deleted_at bigint,
    priorities jsonb
) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $merge$
DECLARE
    watermark bigint := greatest(old_deleted_at, new_deleted_at);
    merged jsonb := old_properties;
    winners jsonb := '{{}}'::jsonb;
    name text;
    entry jsonb;
BEGIN
    IF watermark IS DISTINCT FROM old_deleted_at THEN
        SELECT coalesce(jsonb_object_agg(e.key, e.value), '{{}}'::jsonb) INTO merged
        FROM jsonb_each(old_properties) AS e
        WHERE (e.value ->> 1)::bigint > watermark;
    END IF;
    FOR name, entry IN SELECT e.key, e.value FROM jsonb_each(new_properties) AS e LOOP
        CONTINUE WHEN watermark IS NOT NULL AND (entry ->> 1)::bigint <= watermark;
        IF {schema}.{wins}(entry, merged -> name, priorities) THEN
            winners := winners || jsonb_build_object(name, entry);
        END IF;
    END LOOP;
    RETURN merged || winners;
END
$merge$
"""

# Plain values (no timestamps); a null value means "unset" and is left out.
_CREATE_VALUES_VIEW = """
CREATE OR REPLACE VIEW {schema}.{view} AS
SELECT p.customer_id,
       coalesce(
           (SELECT jsonb_object_agg(e.key, e.value -> 0)
              FROM jsonb_each(p.properties) AS e
             WHERE e.value -> 0 <> 'null'::jsonb),
           '{{}}'::jsonb
       ) AS properties,
       p.deleted_at,
       p.updated_at
  FROM {schema}.{table} AS p
"""

# A version 1 entry in version 2's form: the source and a float's sign are read back from
# the rank key (timestamp 0 and priority, 8 bytes each; kind, 1; the value: 8 bytes, 16 for
# a float with its sign, or text ended by 00 00; then the source, ended by 00 00). Text
# cannot hold U+0000, so no escaped NUL (00 FF) is ever stored.
_CREATE_V1_ENTRY_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.profile_streams_v1_entry(entry jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $v1$
DECLARE
    k bytea := decode(entry ->> 'k', 'hex');
    kind integer := get_byte(k, 16);
    source_at integer;
    source bytea;
BEGIN
    source_at := CASE kind
        WHEN 3 THEN 34
        WHEN 4 THEN 19 + position('\\x0000'::bytea IN substring(k FROM 18))
        ELSE 26 END;
    source := substring(k FROM source_at);
    source := substring(source FROM 1 FOR position('\\x0000'::bytea IN source) - 1);
    RETURN jsonb_build_array(entry -> 'v', entry -> 't', convert_from(source, 'UTF8'))
        || CASE WHEN kind = 3
                THEN jsonb_build_array(CASE WHEN get_byte(k, 25) >= 128 THEN 1 ELSE -1 END)
                ELSE '[]'::jsonb END;
END
$v1$
"""

_REWRITE_V1_ENTRIES = """
UPDATE {schema}.{table}
   SET properties = (
       SELECT coalesce(
           jsonb_object_agg(e.key, {schema}.profile_streams_v1_entry(e.value)), '{{}}'::jsonb)
         FROM jsonb_each(properties) AS e)
 WHERE properties <> '{{}}'::jsonb
"""

_DROP_V1_FUNCTIONS = """
DROP FUNCTION IF EXISTS {schema}.profile_streams_v1_entry(jsonb),
    {schema}.profile_streams_newer(jsonb, jsonb),
    {schema}.{merge}(jsonb, bigint, jsonb, bigint)
"""

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (_CREATE_TABLE, _V1_NEWER, _V1_MERGE, _V1_VALUES_VIEW)),
    # Rewrites every stored entry once; version 1 replicas then fail loudly (their functions
    # are gone) instead of writing entries of the old form.
    (
        2,
        (
            _CREATE_TIE_FUNCTION,
            _CREATE_WINS_FUNCTION,
            _CREATE_MERGE_FUNCTION,
            _CREATE_V1_ENTRY_FUNCTION,
            _REWRITE_V1_ENTRIES,
            _CREATE_VALUES_VIEW,
            _DROP_V1_FUNCTIONS,
        ),
    ),
)
LATEST_VERSION = MIGRATIONS[-1][0]

CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (
    customer_id text COLLATE "C" NOT NULL,
    properties jsonb NOT NULL,
    deleted_at bigint
) ON COMMIT DELETE ROWS
"""

COPY_STAGING = "COPY {staging} (customer_id, properties, deleted_at) FROM STDIN"

# One statement per batch (per session's share of it). Rows are unique per customer (the batch
# is folded first) and go in customer order, so racing replicas lock rows in the same order.
# The WHERE skips rows the merge would leave as they are (replays, stale writes): no dead
# tuples, no new updated_at.
# SET inlines the common cases (every incoming entry wins; some lose) and calls the function
# only when the watermark rises. %(priorities)s is the source priorities as a JSON object.
_UPSERT = """
INSERT INTO {schema}.{table} AS t (customer_id, properties, deleted_at, updated_at)
{rows}
ON CONFLICT (customer_id) DO UPDATE SET
    properties = CASE
        WHEN coalesce(excluded.deleted_at > t.deleted_at, excluded.deleted_at IS NOT NULL)
        THEN {schema}.{merge}(
            t.properties, t.deleted_at, excluded.properties, excluded.deleted_at,
            %(priorities)s::jsonb
        )
        WHEN NOT EXISTS (
            SELECT FROM jsonb_each(excluded.properties) AS n
             WHERE (n.value ->> 1)::bigint <= t.deleted_at
                OR NOT {schema}.{wins}(n.value, t.properties -> n.key, %(priorities)s::jsonb)
        )
        THEN t.properties || excluded.properties
        ELSE t.properties || coalesce((
            SELECT jsonb_object_agg(n.key, n.value)
              FROM jsonb_each(excluded.properties) AS n
             WHERE (t.deleted_at IS NULL OR (n.value ->> 1)::bigint > t.deleted_at)
               AND {schema}.{wins}(n.value, t.properties -> n.key, %(priorities)s::jsonb)
        ), '{{}}'::jsonb)
    END,
    deleted_at = greatest(t.deleted_at, excluded.deleted_at),
    updated_at = excluded.updated_at
WHERE coalesce(excluded.deleted_at > t.deleted_at, excluded.deleted_at IS NOT NULL)
   OR EXISTS (
       SELECT FROM jsonb_each(excluded.properties) AS n
        WHERE (t.deleted_at IS NULL OR (n.value ->> 1)::bigint > t.deleted_at)
          AND {schema}.{wins}(n.value, t.properties -> n.key, %(priorities)s::jsonb)
   )
"""

_FROM_STAGING = """
SELECT customer_id, properties, deleted_at, now()
  FROM {staging}
 ORDER BY customer_id
"""

_ONE_ROW = "SELECT %(customer_id)s::text, %(properties)s::jsonb, %(deleted_at)s::bigint, now()"


def identifiers(schema: str, table: str) -> dict[str, sql.Composable]:
    """The names every statement above is formatted with."""
    return {
        "schema": sql.Identifier(schema),
        "table": sql.Identifier(table),
        "view": sql.Identifier(table + VALUES_VIEW_SUFFIX),
        "migrations": sql.Identifier(MIGRATIONS_TABLE),
        "merge": sql.Identifier(MERGE_FUNCTION),
        "wins": sql.Identifier(WINS_FUNCTION),
        "tie": sql.Identifier(TIE_FUNCTION),
        "staging": sql.Identifier("pg_temp", STAGING_TABLE),
    }


def statement(template: str, names: dict[str, sql.Composable]) -> sql.Composed:
    return sql.SQL(template).format(**names)


def upsert_from_staging(names: dict[str, sql.Composable]) -> sql.Composed:
    return sql.SQL(_UPSERT).format(rows=statement(_FROM_STAGING, names), **names)


def upsert_one_row(names: dict[str, sql.Composable]) -> sql.Composed:
    return sql.SQL(_UPSERT).format(rows=sql.SQL(_ONE_ROW), **names)


def priorities_json(priorities: Mapping[str, int]) -> str:
    """The ``%(priorities)s`` parameter of the merge statements."""
    return orjson.dumps(dict(priorities)).decode()


def migrate(
    conn: Connection[TupleRow], schema: str, table: str, *, up_to: int = LATEST_VERSION
) -> None:
    """Bring ``schema.table`` to version ``up_to`` (the latest); replicas starting together
    take turns."""
    names = identifiers(schema, table)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        # CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the schema exists.
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if found.fetchone() is None:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(names["schema"]))
        conn.execute(statement(CREATE_MIGRATIONS, names))
        row = conn.execute(statement(CURRENT_VERSION, names), (table,)).fetchone()
        current: int = row[0] if row else 0
        for version, statements in MIGRATIONS:
            if version <= current or version > up_to:
                continue
            for text in statements:
                conn.execute(statement(text, names))
            conn.execute(statement(RECORD_VERSION, names), (table, version))
            logger.info("postgres sink migrated target=%s.%s version=%d", schema, table, version)


Row = tuple[str, str, int | None]


def entry(value: Value, last_update: int, source: str) -> list[Any]:
    """A stored property: a float carries its sign, which also marks it as a float."""
    if type(value) is float:
        return [value, last_update, source, -1 if math.copysign(1.0, value) < 0 else 1]
    return [value, last_update, source]


def profile_row(customer_id: str, profile: Profile) -> Row:
    """A folded profile as a table row ``(customer_id, properties json, deleted_at)``. With
    ``upsert_row``, the reference of ``streams._native.copy_rows`` (native/src/copy_rows.rs),
    which the sink uses by default."""
    properties = {
        name: entry(state.value, state.last_update, state.source)
        for name, state in profile.properties.items()
    }
    return customer_id, orjson.dumps(properties).decode(), profile.deleted_at


def upsert_row(upsert: Upsert) -> Row:
    """The row of a customer's only upsert in a batch: every property is the upsert's source's
    (``profile_row`` of the profile it would fold into, without building it)."""
    source = upsert.source
    properties = {
        name: entry(value, last_update, source)
        for name, (value, last_update, _) in upsert.properties.items()
    }
    return upsert.customer_id, orjson.dumps(properties).decode(), None
