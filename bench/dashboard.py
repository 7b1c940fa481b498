"""The spend dashboard at millions of ledger rows, on PostgreSQL (part of ``--scale``).

``dashboard_run`` starts ``python -m bench.dashboard`` with DATABASE_URL pointing at a dedicated
database, ``bench_dashboard`` on 127.0.0.1:5432 (user postgres). That process creates the database,
migrates it, seeds teams, users and keys with budgets, generates the ledger rows in SQL
(``INSERT ... SELECT generate_series``) over the last 30 days, rebuilds the rollups of those days with
the rollup service, then renders /admin/billing/spend/ (its defaults: the last 30 days, all teams)
with Django's test client logged in as a superuser, and prints the timings as JSON.

Generating 10 million rows takes minutes, so a database generated the same day with the same shape is
reused (its shape is the database's comment, set once it is complete); ``--dashboard-fresh`` drops it.
The project's modules are imported inside the functions: ``main`` migrates, then sets Django up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import django
import psycopg

from bench.servers import REPO_ROOT, gateway_environment, run_checked

DATABASE = "bench_dashboard"
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
DAYS = 30  # the dashboard's default range
TEAMS = 50
USERS = 200
KEYS = 1_000
MODEL_GROUPS = 20
PROVIDERS = ("openai", "anthropic", "azure", "bedrock", "vertex_ai")
BATCH_ROWS = 1_000_000  # one INSERT per batch, committed, so progress shows
GENERATOR_VERSION = 1  # change when the generated rows change: older databases are then regenerated
PAGE = "/admin/billing/spend/"


def dashboard_run(*, rows: int, renders: int, fresh: bool, workdir: Path) -> dict[str, Any]:
    """Generate (or reuse) the database, render the dashboard ``renders`` times; return the figures."""
    var_dir = workdir / "dashboard-var"
    var_dir.mkdir(exist_ok=True)
    environment = gateway_environment(var_dir) | {"DATABASE_URL": f"{SERVER_URL}/{DATABASE}"}
    command = [sys.executable, "-m", "bench.dashboard", "--rows", str(rows), "--renders", str(renders)]
    if fresh:
        command.append("--fresh")
    # Its progress (stderr) goes to the terminal: generating 10 million rows takes minutes.
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
        timeout=3 * 3600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the dashboard part failed ({result.returncode}): {result.stdout[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def database_shape(rows: int, today: str) -> str:
    """Return the comment that says what a complete generated database holds."""
    return (
        f"bench dashboard v{GENERATOR_VERSION}: rows={rows} days={DAYS} teams={TEAMS} users={USERS} "
        f"keys={KEYS} groups={MODEL_GROUPS} generated={today}"
    )


def _database_prepare(shape: str, fresh: bool) -> bool:
    """Create the database, or keep it when it is complete with this shape; return True if kept."""
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as connection:
        row = connection.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [DATABASE]
        ).fetchone()
        if row is not None and row[0] == shape and not fresh:
            return True
        connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DATABASE}"')
    return False


def _database_mark(shape: str) -> None:
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as connection:
        connection.execute(f"COMMENT ON DATABASE \"{DATABASE}\" IS '{shape}'")


def _owners_seed() -> dict[str, list[str]]:
    """Create the teams, users and keys the ledger rows name; return their ids, key by key."""
    from django.contrib.auth import get_user_model

    from bench.seeding import LIMITS
    from llm_gateway.crypto import virtual_key_display, virtual_key_hash
    from llm_gateway.models import Team, VirtualKey

    budget = {name: LIMITS[name] for name in ("budget_duration", "rpm_limit", "max_parallel_requests")}
    teams = Team.objects.bulk_create(
        Team(team_alias=f"team-{index:02d}", max_budget=1000 + 100 * index, **budget)
        for index in range(TEAMS)
    )
    user_model = get_user_model()
    users = []
    for index in range(USERS):
        user = user_model(username=f"user-{index:03d}")
        user.set_unusable_password()  # hashing 200 passwords would take a minute
        users.append(user)
    users = user_model.objects.bulk_create(users)
    keys = []
    for index in range(KEYS):
        secret = f"sk-bench-dashboard-{index:05d}"
        keys.append(
            VirtualKey(
                key_hash=virtual_key_hash(secret),
                key_prefix=virtual_key_display(secret),
                key_alias=f"key-{index:04d}",
                team=teams[index % TEAMS],
                user=users[index % USERS],
                max_budget=50 + index % 200,
                **budget,
            )
        )
    keys = VirtualKey.objects.bulk_create(keys)
    return {
        "tokens": [str(key.token) for key in keys],
        "aliases": [key.key_alias for key in keys],
        "team_ids": [str(key.team.team_id) for key in keys],
        "user_ids": [str(key.user.pk) for key in keys],
    }


# One SQL expression per ledger column, over s.i (1..rows) and the owner arrays (indexed 1..KEYS).
# A key uses two model groups, each served by two deployments; 1 request in 50 fails, 1 in 3 streams.
LEDGER_EXPRESSIONS = {
    "request_id": "'bench-' || s.i",
    "created_at": "%(start)s::timestamptz + (s.i - 1) * %(step)s * interval '1 microsecond'",
    "key_token": "(%(tokens)s::text[])[s.i %% {keys} + 1]",
    "key_alias": "(%(aliases)s::text[])[s.i %% {keys} + 1]",
    "team_id": "(%(team_ids)s::text[])[s.i %% {keys} + 1]",
    "user_id": "(%(user_ids)s::text[])[s.i %% {keys} + 1]",
    "end_user": "'customer-' || s.i %% {keys} %% 100",
    "model_requested": "'model-' || g.g",
    "model_group": "'model-' || g.g",
    "deployment_id": "'deployment-' || g.g || '-' || (s.i / {keys} / 2) %% 2",
    "provider": "(%(providers)s::text[])[g.g %% {providers} + 1]",
    "provider_model": "'model-' || g.g",
    "stream": "s.i %% 3 = 0",
    "prompt_tokens": "t.prompt",
    "completion_tokens": "t.completion",
    "cached_tokens": "CASE WHEN s.i %% 4 = 0 THEN t.prompt / 2 ELSE 0 END",
    "cost": "t.prompt * 0.00000015 + t.completion * 0.0000006",
    "latency_ms": "t.latency",
    "time_to_first_token_ms": "CASE WHEN s.i %% 3 = 0 THEN t.latency / 5 END",
    "status": "CASE WHEN s.i %% 50 = 0 THEN 'error' ELSE 'success' END",
    "http_status": "CASE WHEN s.i %% 50 = 0 THEN 500 ELSE 200 END",
    "error_type": "CASE WHEN s.i %% 50 = 0 THEN 'InternalServerError' ELSE '' END",
    "cache_hit": "s.i %% 97 = 0",
}


def ledger_insert_sql(columns: list[str], defaults: dict[str, str]) -> str:
    """Return the INSERT ... SELECT generate_series of ledger rows %(first)s..%(last)s.

    ``columns`` are the table's columns but ``id``; those without an expression take ``defaults``
    (a placeholder per column), so a column added later still gets its model default.
    """
    expressions = {
        name: expression.format(keys=KEYS, providers=len(PROVIDERS))
        for name, expression in LEDGER_EXPRESSIONS.items()
    }
    selected = [expressions.get(column) or defaults[column] for column in columns]
    return (
        f"INSERT INTO billing_ledgerentry ({', '.join(columns)})\n"
        f"SELECT {', '.join(selected)}\n"
        "FROM generate_series(%(first)s, %(last)s) AS s(i)\n"
        f"CROSS JOIN LATERAL (SELECT (s.i %% {KEYS} + (s.i / {KEYS}) %% 2) %% {MODEL_GROUPS} AS g) AS g\n"
        # s.i * 0 ties the subquery to each row: uncorrelated, PostgreSQL evaluates it (and random()) once.
        "CROSS JOIN LATERAL (SELECT 50 + (random() * 2000)::int + s.i * 0 AS prompt,"
        " 10 + (random() * 500)::int AS completion, 200 + (random() * 3000)::int AS latency) AS t"
    )


def _progress(message: str) -> None:
    print(f"dashboard: {message}", file=sys.stderr, flush=True)


def _ledger_generate(rows: int, owners: dict[str, list[str]], start: datetime, end: datetime) -> None:
    from django.db import connection

    from billing.models import LedgerEntry

    fields = [field for field in LedgerEntry._meta.concrete_fields if field.column != "id"]
    defaults, parameters = {}, {}
    for field in fields:
        if field.column not in LEDGER_EXPRESSIONS:
            defaults[field.column] = f"%(default_{field.column})s"
            value = field.get_default() if field.has_default() else None
            parameters[f"default_{field.column}"] = field.get_db_prep_save(value, connection)
    sql = ledger_insert_sql([field.column for field in fields], defaults)
    parameters |= owners | {
        "providers": list(PROVIDERS),
        "start": start,
        "step": (end - start) / timedelta(microseconds=1) / rows,
    }
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        rebuild = _secondary_indexes_drop(cursor)
        for first in range(1, rows + 1, BATCH_ROWS):
            last = min(rows, first + BATCH_ROWS - 1)
            cursor.execute(sql, parameters | {"first": first, "last": last})
            _progress(f"{last:,} of {rows:,} ledger rows")
        _progress(f"rebuilding the ledger's {len(rebuild)} indexes")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for statement in rebuild:
            cursor.execute(statement)
        cursor.execute("ANALYZE billing_ledgerentry")


def _secondary_indexes_drop(cursor) -> list[str]:
    """Drop the ledger's indexes but its primary key; return the statements that put them back.

    Building an index once over the finished table is several times faster than keeping it up to
    date row by row. The statements come from PostgreSQL itself, so they match the migrations.
    """
    cursor.execute(
        """
        SELECT index_class.relname, pg_get_indexdef(index_class.oid), constraint_row.conname,
               pg_get_constraintdef(constraint_row.oid)
        FROM pg_index
        JOIN pg_class AS index_class ON index_class.oid = pg_index.indexrelid
        LEFT JOIN pg_constraint AS constraint_row ON constraint_row.conindid = pg_index.indexrelid
        WHERE pg_index.indrelid = 'billing_ledgerentry'::regclass AND NOT pg_index.indisprimary
        """
    )
    rebuild = []
    for index_name, index_definition, constraint_name, constraint_definition in cursor.fetchall():
        if constraint_name:
            cursor.execute(f'ALTER TABLE billing_ledgerentry DROP CONSTRAINT "{constraint_name}"')
            rebuild.append(
                f'ALTER TABLE billing_ledgerentry ADD CONSTRAINT "{constraint_name}" {constraint_definition}'
            )
        else:
            cursor.execute(f'DROP INDEX "{index_name}"')
            rebuild.append(index_definition)
    return rebuild


def _generate(rows: int, now: datetime) -> dict[str, float]:
    """Seed owners and ledger rows over the last DAYS days, then roll them up; return the timings."""
    from billing.services.rollups import spend_rollups_refresh

    started = time.perf_counter()
    owners = _owners_seed()
    today = now.date()
    first_day = today - timedelta(days=DAYS - 1)
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    _ledger_generate(rows, owners, start, now)
    generated = time.perf_counter()
    _progress(f"rolling up {DAYS} days")
    spend_rollups_refresh(days=[first_day + timedelta(days=n) for n in range(DAYS)], now=now)
    from django.db import connection

    with connection.cursor() as cursor:  # planner statistics, as autovacuum would gather in production
        cursor.execute("ANALYZE billing_spendrollup")
    with_rollups = time.perf_counter()
    return {"generate_s": round(generated - started, 1), "rollup_s": round(with_rollups - generated, 1)}


def _render(renders: int) -> dict[str, Any]:
    """Render the page once to warm up, then ``renders`` times; return the times and the query count."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user_model = get_user_model()
    admin = user_model.objects.filter(username="bench-admin").first()
    if admin is None:
        admin = user_model(username="bench-admin", is_staff=True, is_superuser=True)
        admin.set_unusable_password()
        admin.save()
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)

    def render() -> float:
        started = time.perf_counter()
        response = client.get(PAGE)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or b"Total spend" not in response.content:
            raise RuntimeError(f"{PAGE} answered {response.status_code}: {response.content[:500]!r}")
        return round(elapsed, 1)

    with CaptureQueriesContext(connection) as queries:
        first = render()
    query_count = len(queries)  # now: the next request's request_started signal clears the log
    times = [render() for _ in range(renders)]
    return {
        "first_render_ms": first,
        "renders_ms": times,
        "median_ms": statistics.median(times),
        "queries": query_count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate ledger rows and time the spend dashboard.")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--renders", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="drop and regenerate the database")
    arguments = parser.parse_args()
    now = datetime.now(UTC)
    shape = database_shape(arguments.rows, now.date().isoformat())
    reused = _database_prepare(shape, arguments.fresh)
    run_checked([sys.executable, "manage.py", "migrate", "--verbosity", "0"], dict(os.environ))
    django.setup()
    from billing.models import LedgerEntry, SpendRollup

    timings = {} if reused else _generate(arguments.rows, now)
    if not reused:
        _database_mark(shape)
    result = {
        "database": DATABASE,
        "rows": LedgerEntry.objects.count(),
        "rollup_rows": SpendRollup.objects.count(),
        "days": DAYS,
        "reused": reused,
        **timings,
        **_render(arguments.renders),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
