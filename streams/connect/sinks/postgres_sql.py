"""What the PostgreSQL sink stores, and the SQL that merges it (migrations, upsert).

A profile row keeps ``properties`` as ``{name: {"v": value, "t": last_update_ms, "k": tie}}``.
The merge ranks a state by its timestamp first, then by a tie-break (source priority, value,
source); ``k`` is ``rank_key`` of the state at timestamp 0 as hex, which sorts exactly like
that tie-break under the "C" collation. So ``(t, k)`` compared as a row is the processor's
order, ties included, and ``k`` depends on the source and value only: it is cached.
"""

from __future__ import annotations

import logging
import math

import orjson
from psycopg import Connection, sql
from psycopg.rows import TupleRow

from streams.merge import MergePolicy, ordered_float, rank_key
from streams.model import Profile, PropertyState, Upsert, Value

logger = logging.getLogger(__name__)

MIGRATIONS_TABLE = "profile_streams_migrations"
MERGE_FUNCTION = "profile_streams_merge"
NEWER_FUNCTION = "profile_streams_newer"
STAGING_TABLE = "profile_streams_staging"
VALUES_VIEW_SUFFIX = "_values"
TIE_CACHE_SIZE = 50_000  # distinct (source, value) pairs
_FLOAT_AT = 2 * (8 + 8 + 1)  # hex digits before a float's bytes in a rank key
_FLOAT_END = _FLOAT_AT + 2 * 8
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

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS {schema}.{table} (
    customer_id text COLLATE "C" PRIMARY KEY,
    properties jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    deleted_at bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

# Whether an entry beats the stored one (none stored: it does). Plain SQL: inlined by the planner.
_CREATE_NEWER_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{newer}(entry jsonb, stored jsonb)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $newer$
SELECT stored IS NULL
    OR ((entry ->> 't')::bigint, (entry ->> 'k') COLLATE "C")
       > ((stored ->> 't')::bigint, (stored ->> 'k') COLLATE "C")
$newer$
"""

# The join of two states (merge.join_profiles): per property the newer entry, then the
# watermark drops every property last updated at or before it. Old entries already satisfy
# the old watermark, so they are filtered only when the watermark rises.
_CREATE_MERGE_FUNCTION = """
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
        IF {schema}.{newer}(entry, merged -> name) THEN
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
           (SELECT jsonb_object_agg(e.key, e.value -> 'v')
              FROM jsonb_each(p.properties) AS e
             WHERE e.value -> 'v' <> 'null'::jsonb),
           '{{}}'::jsonb
       ) AS properties,
       p.deleted_at,
       p.updated_at
  FROM {schema}.{table} AS p
"""

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, (_CREATE_TABLE, _CREATE_NEWER_FUNCTION, _CREATE_MERGE_FUNCTION, _CREATE_VALUES_VIEW)),
)

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
# only when the watermark rises.
_UPSERT = """
INSERT INTO {schema}.{table} AS t (customer_id, properties, deleted_at, updated_at)
{rows}
ON CONFLICT (customer_id) DO UPDATE SET
    properties = CASE
        WHEN coalesce(excluded.deleted_at > t.deleted_at, excluded.deleted_at IS NOT NULL)
        THEN {schema}.{merge}(t.properties, t.deleted_at, excluded.properties, excluded.deleted_at)
        WHEN NOT EXISTS (
            SELECT FROM jsonb_each(excluded.properties) AS n
             WHERE (n.value ->> 't')::bigint <= t.deleted_at
                OR NOT {schema}.{newer}(n.value, t.properties -> n.key)
        )
        THEN t.properties || excluded.properties
        ELSE t.properties || coalesce((
            SELECT jsonb_object_agg(n.key, n.value)
              FROM jsonb_each(excluded.properties) AS n
             WHERE (t.deleted_at IS NULL OR (n.value ->> 't')::bigint > t.deleted_at)
               AND {schema}.{newer}(n.value, t.properties -> n.key)
        ), '{{}}'::jsonb)
    END,
    deleted_at = greatest(t.deleted_at, excluded.deleted_at),
    updated_at = excluded.updated_at
WHERE coalesce(excluded.deleted_at > t.deleted_at, excluded.deleted_at IS NOT NULL)
   OR EXISTS (
       SELECT FROM jsonb_each(excluded.properties) AS n
        WHERE (t.deleted_at IS NULL OR (n.value ->> 't')::bigint > t.deleted_at)
          AND {schema}.{newer}(n.value, t.properties -> n.key)
   )
"""

_FROM_STAGING = """
SELECT customer_id, properties, deleted_at, now()
  FROM {staging}
 ORDER BY customer_id
"""

_ONE_ROW = "SELECT %s::text, %s::jsonb, %s::bigint, now()"


def identifiers(schema: str, table: str) -> dict[str, sql.Composable]:
    """The names every statement above is formatted with."""
    return {
        "schema": sql.Identifier(schema),
        "table": sql.Identifier(table),
        "view": sql.Identifier(table + VALUES_VIEW_SUFFIX),
        "migrations": sql.Identifier(MIGRATIONS_TABLE),
        "merge": sql.Identifier(MERGE_FUNCTION),
        "newer": sql.Identifier(NEWER_FUNCTION),
        "staging": sql.Identifier("pg_temp", STAGING_TABLE),
    }


def statement(template: str, names: dict[str, sql.Composable]) -> sql.Composed:
    return sql.SQL(template).format(**names)


def upsert_from_staging(names: dict[str, sql.Composable]) -> sql.Composed:
    return sql.SQL(_UPSERT).format(rows=statement(_FROM_STAGING, names), **names)


def upsert_one_row(names: dict[str, sql.Composable]) -> sql.Composed:
    return sql.SQL(_UPSERT).format(rows=sql.SQL(_ONE_ROW), **names)


def migrate(conn: Connection[TupleRow], schema: str, table: str) -> None:
    """Bring ``schema.table`` to the latest version; replicas starting together take turns."""
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
            if version <= current:
                continue
            for text in statements:
                conn.execute(statement(text, names))
            conn.execute(statement(RECORD_VERSION, names), (table, version))
            logger.info("postgres sink migrated target=%s.%s version=%d", schema, table, version)


class RowEncoder:
    """Profiles as table rows: ``(customer_id, properties json, deleted_at)``.

    ``k`` (the tie-break) depends on the source and the value only, so it is cached for
    values that repeat (names, cities, statuses): ``rank_key`` is the hot spot otherwise.
    Floats are not cached (0.0 and -0.0 are equal keys with different ranks).
    """

    def __init__(self, policy: MergePolicy, cache_size: int = TIE_CACHE_SIZE) -> None:
        self._policy = policy
        self._cache: dict[tuple[str, type, object], str] = {}
        self._float_parts: dict[str, tuple[str, str, str]] = {}
        self._cache_size = cache_size

    def tie_key(self, state: PropertyState) -> str:
        return self.tie(state.source, state.value)

    def tie(self, source: str, value: Value) -> str:
        """The hex tie-break of ``value`` written by ``source`` (``k``)."""
        kind = type(value)
        if kind is float:
            return self._float_key(source, value)  # type: ignore[arg-type]
        cache_key = (source, kind, value)
        key = self._cache.get(cache_key)
        if key is None:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            key = rank_key(PropertyState(value, 0, source), self._policy).hex()
            self._cache[cache_key] = key
        return key

    def _float_key(self, source: str, value: float) -> str:
        """``rank_key`` of a float at timestamp 0, from per-source parts (floats rarely repeat,
        so a cache misses; the parts around the value never change)."""
        parts = self._float_parts.get(source)
        if parts is None:
            if len(self._float_parts) >= self._cache_size:
                self._float_parts.clear()
            # rank_key's layout: timestamp (8 bytes), priority (8), kind (1), the value (8),
            # its sign (8), the source. Only the value and the sign differ between floats.
            plus = rank_key(PropertyState(0.0, 0, source), self._policy).hex()
            minus = rank_key(PropertyState(-0.0, 0, source), self._policy).hex()
            parts = (plus[:_FLOAT_AT], plus[_FLOAT_END:], minus[_FLOAT_END:])
            self._float_parts[source] = parts
        prefix, suffix_plus, suffix_minus = parts
        return (
            prefix
            + ordered_float(value).hex()
            + (suffix_minus if math.copysign(1.0, value) < 0 else suffix_plus)
        )

    def row(self, customer_id: str, profile: Profile) -> tuple[str, str, int | None]:
        cached, tie = self._cache.get, self.tie
        properties = {}
        for name, state in profile.properties.items():
            value, source = state.value, state.source
            # The cache hit inlined (floats are never in the cache): this loop is hot.
            key = cached((source, type(value), value)) or tie(source, value)
            properties[name] = {"v": value, "t": state.last_update, "k": key}
        return customer_id, orjson.dumps(properties).decode(), profile.deleted_at

    def upsert_row(self, upsert: Upsert) -> tuple[str, str, None]:
        """The row of a customer's only upsert in a batch: every property is the upsert's
        source's (``row`` of the profile it would fold into, without building it)."""
        cached, tie, source = self._cache.get, self.tie, upsert.source
        properties = {}
        for name, (value, last_update, _) in upsert.properties.items():
            key = cached((source, type(value), value)) or tie(source, value)
            properties[name] = {"v": value, "t": last_update, "k": key}
        return upsert.customer_id, orjson.dumps(properties).decode(), None
