"""Engine, sessions and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import contextlib
import importlib.resources
import json
import re
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(str(importlib.resources.files("migrations")))
_READ_OPTION = "commsdesk_read_only"
# SQLite has one writer at a time. Threads of this process queue for it on a lock (woken
# the moment it is free) rather than in SQLite's busy handler, which polls with sleeps
# of up to 100 ms; other processes still meet the busy timeout.
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = (
    weakref.WeakKeyDictionary())


# JSON columns are written compact, keys sorted, non-ASCII as is: for the audit trail's
# details that is exactly the canonical form their digest hashes (`audit.canonical`, which
# also stringifies what JSON cannot hold; `_append` stores that already), so `audit
# verify` hashes the stored text as it is (SQLite's JSON and PostgreSQL's `json` keep it;
# the other PostgreSQL columns are jsonb, which re-renders it, and nothing hashes them).
_JSON_TEXT = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class DatabaseError(Exception):
    """A database problem explained in one sentence."""


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain postgres URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    try:
        return _make_engine(normalise_url(url), **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseError(
            f"DATABASE_URL {url!r} is not a database URL commsdesk can use ({exc}); "
            "use sqlite:///path.db or postgresql+psycopg://user@host/db"
        ) from None


def _make_engine(url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("json_serializer", _JSON_TEXT.encode)
    if url.startswith("sqlite"):
        if ":memory:" not in url and url.rstrip("/") not in ("sqlite:", "sqlite+pysqlite:"):
            # a connection for each thread that may want one, as for PostgreSQL below, but
            # few kept open: each holds its own page cache, and there is one writer anyway
            kwargs.setdefault("pool_size", 5)
            kwargs.setdefault("max_overflow", 35)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself (below) so writers serialise cleanly.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            # 1 MB of page cache per connection instead of 2 MB (WAL reads are served from
            # the OS's cache as well): memory stays flat however many threads use the pool
            cur.execute("PRAGMA cache_size=-1024")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A transaction takes the one writer's lock at BEGIN: no "database is locked"
            # upgrades mid-way. Sessions opened by `reading()` begin deferred instead: in
            # WAL mode they never wait for a writer.
            read_only = conn.get_execution_options().get(_READ_OPTION)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        _SQLITE_WRITERS[engine] = threading.RLock()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # Bolt runs 32 listener threads plus the outbox, publisher and scheduler: a pool as
    # large keeps requests from queueing for a connection
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    bind = factory.kw.get("bind")
    writer = _SQLITE_WRITERS.get(bind) if isinstance(bind, Engine) else None
    with contextlib.ExitStack() as stack:
        if writer is not None:
            stack.enter_context(writer)
        session = stack.enter_context(factory())
        stack.enter_context(session.begin())
        yield session


@contextlib.contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that only reads: on SQLite it does not take (or wait for) the write lock.
    Writing through it fails with "database is locked" when another writer is busy."""
    with factory() as session:
        session.connection(execution_options={_READ_OPTION: True})
        yield session


# ---------------------------------------------------------------- migrations


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def schema_status(engine: Engine) -> tuple[str | None, str | None]:
    """(current revision in the database, head revision in the code)."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


def check_reachable(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(
            f"cannot reach the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{reason}"
        ) from None


def upgrade(engine: Engine, migration_url: str | None = None) -> tuple[str | None, str | None]:
    """Apply pending migrations; refuse a database newer than this code. With
    `migration_url` (DATABASE_MIGRATION_URL: the tables' owner) they run as that role."""
    if migration_url and migration_url != engine.url.render_as_string(hide_password=False):
        owner = make_engine(migration_url)
        try:
            return upgrade(owner)
        finally:
            owner.dispose()
    check_reachable(engine)
    current, head = schema_status(engine)
    script = ScriptDirectory.from_config(alembic_config())
    if current is not None and current not in {s.revision for s in script.walk_revisions()}:
        raise DatabaseError(
            f"the database is at schema revision {current!r}, newer than this commsdesk "
            f"knows (its newest is {head!r}); upgrade commsdesk instead of the database"
        )
    if current != head:
        try:
            with engine.connect() as conn:
                sqlite = conn.dialect.name == "sqlite"
                if sqlite:
                    # SQLite migrations rebuild tables ("batch" mode); foreign keys must be
                    # off meanwhile, and can only be switched outside a transaction
                    _raw_pragma(conn, "foreign_keys=OFF")
                try:
                    with conn.begin():
                        cfg = alembic_config()
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, "head")
                        if sqlite:
                            bad = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                            if bad:
                                raise DatabaseError(
                                    f"migrating left {len(bad)} broken reference(s); "
                                    "the database was not changed")
                finally:
                    if sqlite:
                        _raw_pragma(conn, "foreign_keys=ON")
        except SQLAlchemyError as exc:
            raise DatabaseError(f"migrating the database failed: {exc.__class__.__name__}: "
                                f"{str(exc).splitlines()[0]}") from None
    return current, head


def _raw_pragma(conn: Any, pragma: str) -> None:
    """A PRAGMA on the driver connection itself, outside any transaction."""
    conn.connection.driver_connection.execute(f"PRAGMA {pragma}")


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


# ---------------------------------------------------------------- least privilege (PostgreSQL)

_ROLE_RE = r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$"


def grant_statements(engine: Engine, role: str) -> list[str]:
    """What `serve`'s role needs on PostgreSQL, and no more: every table of the schema to
    read and write, except the audit trail (SELECT and INSERT only: no UPDATE, DELETE,
    TRUNCATE, and, not owning it, no ALTER or DROP of its triggers), the schema version
    to read, sequences, and the owner's purge function for retention."""
    if engine.dialect.name != "postgresql":
        raise DatabaseError("`db grant` is for PostgreSQL: SQLite has no roles (protect the "
                            "database file with its permissions instead)")
    if not re.match(_ROLE_RE, role):
        raise DatabaseError(f"{role!r} is not a role name")
    check_reachable(engine)
    with engine.connect() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
        tables = sorted(inspect(conn).get_table_names(schema=schema))
        has_purge = conn.exec_driver_sql(
            "SELECT to_regprocedure('audit_events_purge(integer[])') IS NOT NULL").scalar_one()
    if "audit_events" not in tables:
        raise DatabaseError("the database has no audit_events table yet: run "
                            "`commsdesk db upgrade` (as the owner role) first")
    r, sch = f'"{role}"', f'"{schema}"'
    out = [f"GRANT USAGE ON SCHEMA {sch} TO {r}"]
    for t in tables:
        if t == "audit_events":
            out.append(f'REVOKE ALL ON {sch}."{t}" FROM {r}')
            out.append(f'GRANT SELECT, INSERT ON {sch}."{t}" TO {r}')
        elif t == "alembic_version":
            out.append(f'GRANT SELECT ON {sch}."{t}" TO {r}')
        else:
            out.append(f'GRANT SELECT, INSERT, UPDATE, DELETE ON {sch}."{t}" TO {r}')
    out.append(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {sch} TO {r}")
    if has_purge:
        out.append(f"GRANT EXECUTE ON FUNCTION {sch}.audit_events_purge(integer[]) TO {r}")
    return out


def apply_grants(engine: Engine, role: str) -> list[str]:
    statements = grant_statements(engine, role)
    with engine.begin() as conn:
        for stmt in statements:
            conn.exec_driver_sql(stmt)
    return statements


def url_user(url: str) -> str | None:
    return make_url(normalise_url(url)).username


def audit_privilege_warning(engine: Engine) -> str | None:
    """A sentence when this engine's role could rewrite the audit trail unnoticed by the
    database: it owns the audit table (so may drop its triggers), is a superuser, or may
    UPDATE, DELETE or TRUNCATE it. None when least privilege holds (and on SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT current_user, pg_get_userbyid(c.relowner) = current_user, r.rolsuper, "
            "has_table_privilege(c.oid, 'UPDATE') OR has_table_privilege(c.oid, 'DELETE') "
            "OR has_table_privilege(c.oid, 'TRUNCATE') "
            "FROM pg_class c JOIN pg_roles r ON r.rolname = current_user "
            "WHERE c.oid = to_regclass('audit_events')").first()
    if row is None:
        return None
    user, owns, superuser, rewrites = row
    if not (owns or superuser or rewrites):
        return None
    why = ("owns the audit table (it may drop or disable its triggers)" if owns else
           "is a superuser" if superuser else "may UPDATE, DELETE or TRUNCATE the audit table")
    return (f"serve runs as database role {user!r}, which {why}: run migrations as an owner "
            "role (DATABASE_MIGRATION_URL) and serve as a role with only what "
            f"`commsdesk db grant --role {user}` grants")
