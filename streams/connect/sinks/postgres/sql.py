"""What the PostgreSQL sink stores, and the SQL that merges it (migrations, upsert).

A profile row keeps ``properties`` as plain values ``{name: value}`` (null: unset), the
``last_update`` (ms) and ``source`` most of its properties share, and ``stamps``, ``{name:
[last_update, source]}``, for the properties whose own differ. jsonb keeps numbers as decimals,
so the few floats whose value would read back as an integer or as 0.0 (``1e+16``, ``-0.0``)
add their sign to their stamp: ``[last_update, source, sign]``. A property wins against the
stored one when its timestamp is greater; on equal timestamps (rare: ties and replays) a SQL
function ranks the two exactly like ``MergePolicy.rank``: source priority (the sink's current
``source_priority``, passed with each statement), the value's kind, the value, the source.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from streams.model import Profile, Upsert, Value
from streams.optional import requires

with requires("psycopg", "the PostgreSQL sink"):
    from psycopg import Connection, sql
    from psycopg.rows import TupleRow

logger = logging.getLogger(__name__)

MIGRATIONS_TABLE = "profile_streams_migrations"
TIE_FUNCTION = "profile_streams_tie"
BEATS_FUNCTION = "profile_streams_beats"
JOIN_FUNCTION = "profile_streams_join"
ENTRY_FUNCTION = "profile_streams_entry"
ENTRIES_FUNCTION = "profile_streams_entries"
PACK_FUNCTION = "profile_streams_pack"
MERGE_ROWS_FUNCTION = "profile_streams_merge_rows"
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

# --- version 3: plain values, the (last_update, source) most properties share, stamps -------
# A row keeps ``properties`` as plain values ``{name: value}`` (null: unset), ``last_update``
# and ``source`` shared by most of its properties, and ``stamps`` ``{name: [last_update,
# source]}`` for the others; a float whose value jsonb would read as an integer or as 0.0
# (1e+16, -0.0) adds its sign: ``[last_update, source, sign]``. A backfill's row is its values
# and two scalars, so the server parses and stores about half of version 2's bytes. The merge
# compares entries of version 2's form, built from the row (``{entry}``); the functions of
# version 2 that its statements call are replaced, so a replica of version 2 fails loudly.

_ADD_V3_COLUMNS = """
ALTER TABLE {schema}.{table}
    ADD COLUMN IF NOT EXISTS last_update bigint,
    ADD COLUMN IF NOT EXISTS source text COLLATE "C",
    ADD COLUMN IF NOT EXISTS stamps jsonb
"""

# A property as version 2's entry. A number with a fraction in jsonb's text is a float (an
# integer never has one); other floats carry their sign in the stamp.
_CREATE_ENTRY_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{entry}(
    value jsonb, stamp jsonb, last_update bigint, source text
) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $entry$
SELECT jsonb_build_array(
           value,
           coalesce(stamp -> 0, to_jsonb(last_update)),
           coalesce(stamp -> 1, to_jsonb(source)))
    || CASE WHEN stamp -> 2 IS NOT NULL THEN jsonb_build_array(stamp -> 2)
            WHEN jsonb_typeof(value) = 'number' AND strpos(value::text, '.') > 0
            THEN jsonb_build_array(CASE WHEN value::numeric < 0 THEN -1 ELSE 1 END)
            ELSE '[]'::jsonb END
$entry$
"""

_CREATE_ENTRIES_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{entries}(
    properties jsonb, stamps jsonb, last_update bigint, source text
) RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $entries$
SELECT coalesce(
    jsonb_object_agg(p.key, {schema}.{entry}(p.value, stamps -> p.key, last_update, source)),
    '{{}}'::jsonb)
  FROM jsonb_each(properties) AS p
$entries$
"""

# Entries back into a row: the most common (last_update, source) becomes the row's.
_CREATE_PACK_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{pack}(
    entries jsonb,
    OUT properties jsonb, OUT last_update bigint, OUT source text, OUT stamps jsonb
) LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $pack$
BEGIN
    SELECT (e.value ->> 1)::bigint, e.value ->> 2 INTO last_update, source
      FROM jsonb_each(entries) AS e
     GROUP BY e.value ->> 1, e.value ->> 2
     ORDER BY count(*) DESC, (e.value ->> 1)::bigint DESC, (e.value ->> 2) COLLATE "C"
     LIMIT 1;
    SELECT coalesce(jsonb_object_agg(e.key, e.value -> 0), '{{}}'::jsonb),
           jsonb_object_agg(
               e.key,
               CASE WHEN m.mark THEN jsonb_build_array(e.value -> 1, e.value -> 2, e.value -> 3)
                    ELSE jsonb_build_array(e.value -> 1, e.value -> 2) END
           ) FILTER (WHERE m.mark
                        OR (e.value ->> 1)::bigint <> last_update
                        OR (e.value ->> 2) COLLATE "C" <> source)
      INTO properties, stamps
      FROM jsonb_each(entries) AS e,
           LATERAL (SELECT jsonb_array_length(e.value) > 3
                       AND (strpos((e.value -> 0)::text, '.') = 0
                            OR (e.value ->> 3 = '-1' AND (e.value -> 0)::numeric = 0))
                       AS mark) AS m;
END
$pack$
"""

# Version 2's comparison and join under new names: its statements call the old ones, which
# are dropped.
_CREATE_BEATS_FUNCTION = _CREATE_WINS_FUNCTION.replace("{wins}", "{beats}")
_CREATE_JOIN_FUNCTION = _CREATE_MERGE_FUNCTION.replace("{merge}", "{join}").replace(
    "{wins}", "{beats}"
)

# The stored row merged with a new one, through their entries (the upsert statement merges
# the common case, a new row newer than everything stored, without it).
_CREATE_MERGE_ROWS_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{merge_rows}(
    old_properties jsonb, old_last_update bigint, old_source text, old_stamps jsonb,
    old_deleted_at bigint,
    new_properties jsonb, new_last_update bigint, new_source text, new_stamps jsonb,
    new_deleted_at bigint,
    priorities jsonb,
    OUT properties jsonb, OUT last_update bigint, OUT source text, OUT stamps jsonb,
    OUT deleted_at bigint
) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $merge_rows$
SELECT p.properties, p.last_update, p.source, p.stamps, greatest(old_deleted_at, new_deleted_at)
  FROM {schema}.{pack}({schema}.{join}(
      {schema}.{entries}(old_properties, old_stamps, old_last_update, old_source),
      old_deleted_at,
      {schema}.{entries}(new_properties, new_stamps, new_last_update, new_source),
      new_deleted_at,
      priorities)) AS p
$merge_rows$
"""

# Rewrites every stored entry of version 2 into a row of version 3.
_REWRITE_V2_ENTRIES = """
UPDATE {schema}.{table} AS t
   SET (properties, last_update, source, stamps) = (
       SELECT p.properties, p.last_update, p.source, p.stamps
         FROM {schema}.{pack}(t.properties) AS p)
 WHERE t.properties <> '{{}}'::jsonb
"""

# Plain values; a null value means "unset" and is left out (values are never objects).
_CREATE_V3_VALUES_VIEW = """
CREATE OR REPLACE VIEW {schema}.{view} AS
SELECT customer_id, jsonb_strip_nulls(properties) AS properties, deleted_at, updated_at
  FROM {schema}.{table}
"""

_DROP_V2_FUNCTIONS = """
DROP FUNCTION IF EXISTS {schema}.{wins}(jsonb, jsonb, jsonb),
    {schema}.{merge}(jsonb, bigint, jsonb, bigint, jsonb)
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
    (
        3,
        (
            _ADD_V3_COLUMNS,
            _CREATE_ENTRY_FUNCTION,
            _CREATE_ENTRIES_FUNCTION,
            _CREATE_PACK_FUNCTION,
            _CREATE_BEATS_FUNCTION,
            _CREATE_JOIN_FUNCTION,
            _CREATE_MERGE_ROWS_FUNCTION,
            _REWRITE_V2_ENTRIES,
            _CREATE_V3_VALUES_VIEW,
            _DROP_V2_FUNCTIONS,
        ),
    ),
)
LATEST_VERSION = MIGRATIONS[-1][0]

CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (
    customer_id text COLLATE "C" NOT NULL,
    properties jsonb NOT NULL,
    last_update bigint,
    source text COLLATE "C",
    stamps jsonb,
    deleted_at bigint
) ON COMMIT DELETE ROWS
"""

COPY_STAGING = (
    "COPY {staging} (customer_id, properties, last_update, source, stamps, deleted_at) FROM STDIN"
)

# One statement per batch (per session's share of it). Rows are unique per customer (the batch
# is folded first) and go in customer order, so racing replicas lock rows in the same order.
# A new customer's row goes in as it is. A stored one is merged: when the new row does not
# raise the watermark and every property of it is newer than everything stored (a live update),
# by overlaying the values, the stored properties it leaves keeping their own (last_update,
# source) as stamps; otherwise by ``{merge_rows}``. The WHERE skips rows the merge would leave
# as they are (replays, stale writes: no dead tuples, no new updated_at): it compares the
# timestamps as stored, tells a replay (the same value, text, source and float sign) from its
# text, and builds entries only for ties. Expressions, not SQL functions: the planner inlines
# no function with a subquery.
# %(priorities)s is the source priorities as a JSON object.
_RISES = "coalesce(excluded.deleted_at > t.deleted_at, excluded.deleted_at IS NOT NULL)"
_NEWER = """coalesce(NOT {rises}
    AND least(excluded.last_update,
              (SELECT min((s.value ->> 0)::bigint) FROM jsonb_each(excluded.stamps) AS s))
      > greatest(t.last_update, t.deleted_at,
                 (SELECT max((s.value ->> 0)::bigint) FROM jsonb_each(t.stamps) AS s)), false)"""
_UPSERT = """
INSERT INTO {schema}.{table} AS t
    (customer_id, properties, last_update, source, stamps, deleted_at, updated_at)
{rows}
ON CONFLICT (customer_id) DO UPDATE SET
    (properties, last_update, source, stamps, deleted_at) = (
        SELECT t.properties || excluded.properties, excluded.last_update, excluded.source,
               nullif(
                   coalesce(t.stamps, '{{}}'::jsonb)
                       - ARRAY(SELECT jsonb_object_keys(excluded.properties))
                   || coalesce(excluded.stamps, '{{}}'::jsonb)
                   || coalesce((
                       SELECT jsonb_object_agg(k, jsonb_build_array(t.last_update, t.source))
                         FROM jsonb_object_keys(t.properties) AS k
                        WHERE NOT excluded.properties ? k
                          AND NOT coalesce(t.stamps ? k, false)), '{{}}'::jsonb),
                   '{{}}'::jsonb),
               t.deleted_at
         WHERE {newer}
        UNION ALL
        SELECT m.properties, m.last_update, m.source, m.stamps, m.deleted_at
          FROM {schema}.{merge_rows}(
              t.properties, t.last_update, t.source, t.stamps, t.deleted_at,
              excluded.properties, excluded.last_update, excluded.source, excluded.stamps,
              excluded.deleted_at, %(priorities)s::jsonb) AS m
         WHERE NOT {newer}),
    updated_at = excluded.updated_at
WHERE {rises}
   OR EXISTS (
       SELECT FROM jsonb_each(excluded.properties) AS n,
            LATERAL (
                SELECT coalesce((excluded.stamps -> n.key ->> 0)::bigint, excluded.last_update)
                           AS at,
                       coalesce((t.stamps -> n.key ->> 0)::bigint, t.last_update) AS stored_at
            ) AS x
        WHERE (t.deleted_at IS NULL OR x.at > t.deleted_at)
          AND (NOT t.properties ? n.key
               OR x.at > x.stored_at
               OR (x.at = x.stored_at
                   AND NOT (n.value::text = (t.properties -> n.key)::text
                            AND coalesce(excluded.stamps -> n.key ->> 1, excluded.source)
                                = coalesce(t.stamps -> n.key ->> 1, t.source)
                            AND (excluded.stamps -> n.key -> 2)
                                IS NOT DISTINCT FROM (t.stamps -> n.key -> 2))
                   AND {schema}.{beats}(
                   {schema}.{entry}(
                       n.value, excluded.stamps -> n.key, excluded.last_update, excluded.source),
                   {schema}.{entry}(
                       t.properties -> n.key, t.stamps -> n.key, t.last_update, t.source),
                   %(priorities)s::jsonb))))
"""

_FROM_STAGING = """
SELECT customer_id, properties, last_update, source, stamps, deleted_at, now()
  FROM {staging}
 ORDER BY customer_id
"""

# Through text, so a timestamp that is not an integer is refused as COPY refuses it, not rounded.
_ONE_ROW = (
    "SELECT %(customer_id)s::text, %(properties)s::jsonb, %(last_update)s::text::bigint,"
    " %(source)s::text, %(stamps)s::jsonb, %(deleted_at)s::text::bigint, now()"
)


def identifiers(schema: str, table: str) -> dict[str, sql.Composable]:
    """The names every statement above is formatted with."""
    return {
        "schema": sql.Identifier(schema),
        "table": sql.Identifier(table),
        "view": sql.Identifier(table + VALUES_VIEW_SUFFIX),
        "migrations": sql.Identifier(MIGRATIONS_TABLE),
        "merge": sql.Identifier("profile_streams_merge"),
        "wins": sql.Identifier("profile_streams_wins"),
        "tie": sql.Identifier(TIE_FUNCTION),
        "beats": sql.Identifier(BEATS_FUNCTION),
        "join": sql.Identifier(JOIN_FUNCTION),
        "entry": sql.Identifier(ENTRY_FUNCTION),
        "entries": sql.Identifier(ENTRIES_FUNCTION),
        "pack": sql.Identifier(PACK_FUNCTION),
        "merge_rows": sql.Identifier(MERGE_ROWS_FUNCTION),
        "staging": sql.Identifier("pg_temp", STAGING_TABLE),
    }


def statement(template: str, names: dict[str, sql.Composable]) -> sql.Composed:
    return sql.SQL(template).format(**names)


def _upsert(rows: sql.Composable, names: dict[str, sql.Composable]) -> sql.Composed:
    rises = sql.SQL(_RISES)
    newer = sql.SQL(_NEWER).format(rises=rises)
    return sql.SQL(_UPSERT).format(rows=rows, newer=newer, rises=rises, **names)


def upsert_from_staging(names: dict[str, sql.Composable]) -> sql.Composed:
    return _upsert(statement(_FROM_STAGING, names), names)


def upsert_one_row(names: dict[str, sql.Composable]) -> sql.Composed:
    return _upsert(sql.SQL(_ONE_ROW), names)


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


_READ_ENTRIES = """
SELECT customer_id, deleted_at, {schema}.{entries}(properties, stamps, last_update, source)
  FROM {schema}.{table}
"""


def stored_entries(
    conn: Connection[TupleRow], schema: str, table: str
) -> dict[str, tuple[int | None, dict[str, list[Any]]]]:
    """Every row as ``{customer_id: (deleted_at, {name: entry})}``, each property as the
    entry the merge functions compare, ``[value, last_update, source]`` (a float adds its
    sign): for checks and tests."""
    rows = conn.execute(statement(_READ_ENTRIES, identifiers(schema, table))).fetchall()
    return {customer: (deleted_at, entries) for customer, deleted_at, entries in rows}


ROW_COLUMNS = ("customer_id", "properties", "last_update", "source", "stamps", "deleted_at")
# The staging columns, in ROW_COLUMNS' order.
Row = tuple[str, str, int | None, str | None, str | None, int | None]
# A float from here on is written with an exponent and no fraction (1e+16), which jsonb reads
# back as an integer.
FLOAT_EXPONENT_FROM = 1e16


def float_mark(value: Value) -> int | None:
    """The sign a stored float keeps beside its value, when the value alone would not say it
    is a float: jsonb reads 1e+16 as an integer and -0.0 as 0.0 (any other float keeps a
    fraction, ``1.0``, which tells it from an integer)."""
    if type(value) is not float:
        return None
    if abs(value) >= FLOAT_EXPONENT_FROM:
        return -1 if value < 0 else 1
    if value == 0.0 and math.copysign(1.0, value) < 0:
        return -1
    return None


def pack(
    customer_id: str,
    properties: Iterable[tuple[str, Value, int, str]],
    deleted_at: int | None,
) -> Row:
    """A row of version 3: the plain values, the (last_update, source) most of them share
    (the first seen of the most common), and ``stamps`` for the others and marked floats."""
    items = list(properties)
    counts: Counter[tuple[int, str]] = Counter((at, source) for _, _, at, source in items)
    if not counts:
        return customer_id, "{}", None, None, None, deleted_at
    common_at, common_source = max(counts, key=counts.__getitem__)
    stamps: dict[str, list[Any]] = {}
    for name, value, at, source in items:
        mark = float_mark(value)
        if mark is not None:
            stamps[name] = [at, source, mark]
        elif at != common_at or source != common_source:
            stamps[name] = [at, source]
    values = orjson.dumps({name: value for name, value, _, _ in items}).decode()
    return (
        customer_id,
        values,
        common_at,
        common_source,
        orjson.dumps(stamps).decode() if stamps else None,
        deleted_at,
    )


def row_parameters(row: Row) -> dict[str, Any]:
    """A row as the named parameters of ``upsert_one_row``'s statement (priorities aside)."""
    return dict(zip(ROW_COLUMNS, row, strict=True))


def profile_row(customer_id: str, profile: Profile) -> Row:
    """A folded profile as a staging row. With ``upsert_row``, the reference of
    ``streams._native.copy_rows`` (native/src/copy_rows.rs), which the sink uses by default."""
    return pack(
        customer_id,
        (
            (name, state.value, state.last_update, state.source)
            for name, state in profile.properties.items()
        ),
        profile.deleted_at,
    )


def upsert_row(upsert: Upsert) -> Row:
    """The row of a customer's only upsert in a batch: every property is the upsert's source's
    (``profile_row`` of the profile it would fold into, without building it)."""
    source = upsert.source
    return pack(
        upsert.customer_id,
        (
            (name, value, last_update, source)
            for name, (value, last_update, _) in upsert.properties.items()
        ),
        None,
    )
