"""The `commsdesk` command line (click). Problems print as sentences, never tracebacks."""

from __future__ import annotations

import functools
import importlib.resources
import stat
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from bot.config import ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def _fail(problems: list[str]) -> None:
    for p in problems:
        click.echo(f"commsdesk: {p}", err=True)
    sys.exit(1)


def friendly(func: F) -> F:
    """Turn known failures into one clear sentence each and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        from bot.db import DatabaseError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            _fail(exc.problems)
        except DatabaseError as exc:
            _fail([str(exc)])
        except SQLAlchemyError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _fail([f"database error: {first}"])

    return wrapper  # type: ignore[return-value]


def _template(name: str) -> str:
    return (importlib.resources.files("bot") / "templates" / name).read_text("utf-8")


def _settings(config: str | None, **kw: Any) -> Settings:
    return load_settings(Path(config) if config else None, **kw)


def _setup_logging(settings: Settings) -> None:
    from bot import logs

    logs.configure(
        settings.env.commsdesk_log_level, settings.env.commsdesk_log_format, settings.secrets()
    )


config_option = click.option(
    "--config", "config", type=click.Path(dir_okay=False), default=None,
    help="Config file (default: $COMMSDESK_CONFIG or ./commsdesk.toml).",
)


@click.group()
@click.version_option(package_name="commsdesk")
def main() -> None:
    """commsdesk: council social media inside Slack, approved by the comms team."""


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=".")
def init(directory: str) -> None:
    """Write a commented commsdesk.toml and .env.example (never overwrites)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    for name, template in (("commsdesk.toml", "commsdesk.toml"), (".env.example", "env.example")):
        path = target / name
        if path.exists():
            click.echo(f"{path} exists: left as it is")
            continue
        body = _template(template)
        from bot import network_examples

        if name == "commsdesk.toml":
            body = body.replace("__OTHER_NETWORK_ACCOUNTS__",
                                network_examples.other_accounts(body))
        if name == ".env.example":  # a fresh audit key, made here, for this deployment only
            from bot.audit_keys import new_key

            body = body.replace("__FRESH_AUDIT_KEY__", new_key())
            body = body.replace("__NETWORK_CREDENTIALS__", network_examples.network_credentials(
                _template("commsdesk.toml")))
        path.write_text(body, encoding="utf-8")
        if name == ".env.example":
            path.chmod(0o600)  # it holds a real key now
        click.echo(f"wrote {path}")
    click.echo("Next: copy .env.example to .env, fill it in, then `commsdesk check-config`.")


def dotenv_warning(path: Path) -> str | None:
    """A warning when `.env` (secrets) can be read or changed by anyone but its owner."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    return (f"warning: {path} holds secrets but its mode is {mode:04o} (group or others can "
            f"read or change it); fix it with: chmod 600 {path}")


@main.command("check-config")
@config_option
@click.option("--online", is_flag=True,
              help="Also ask Slack (token, channels, user group) and each account's network "
                   "(its credentials).")
def check_config(config: str | None, online: bool) -> None:
    """Validate the config file and environment; exit 1 listing every problem."""
    warning = dotenv_warning(Path.cwd() / ".env")
    if warning:
        click.echo(warning, err=True)
    try:
        settings = _settings(config)
    except ConfigError as exc:
        _fail(exc.problems)
        return
    if online:
        from bot.slack_check import check_slack
        from integrations.account_check import check_networks

        problems = check_slack(settings) + check_networks(settings)
        if problems:
            _fail(problems)
    c = settings.config
    click.echo(
        f"config OK: {len(c.accounts)} account(s), {len(c.services)} service(s), "
        f"time zone {c.timezone}" + (" (Slack and networks checked online)" if online else "")
    )


@main.group("db")
def db_group() -> None:
    """Database commands."""


@db_group.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Apply database migrations (Alembic)."""
    from bot import db
    from bot.config import load_environment

    env = load_environment()
    engine = db.make_engine(env.database_migration_url or env.database_url)
    before, head = db.upgrade(engine)
    if before == head:
        click.echo(f"database already at {head}")
    else:
        click.echo(f"database upgraded from {before or 'empty'} to {head}")
    app_role = db.url_user(env.database_url)
    if (env.database_migration_url and engine.dialect.name == "postgresql" and app_role
            and app_role != db.url_user(env.database_migration_url)):
        # new tables reach serve's role; the audit table stays INSERT and SELECT only
        db.apply_grants(engine, app_role)
        click.echo(f"privileges of role {app_role!r} (DATABASE_URL) brought up to date")


@db_group.command("grant")
@click.option("--role", required=True, help="The role `serve` connects as (DATABASE_URL's).")
@click.option("--apply", "apply_", is_flag=True,
              help="Run the statements (as DATABASE_MIGRATION_URL's role, else DATABASE_URL's).")
@friendly
def db_grant(role: str, apply_: bool) -> None:
    """Print (or run) the least-privilege grants for serve's role on PostgreSQL: the audit
    table only to INSERT and SELECT."""
    from bot import db
    from bot.config import load_environment

    env = load_environment()
    engine = db.make_engine(env.database_migration_url or env.database_url)
    statements = db.apply_grants(engine, role) if apply_ else db.grant_statements(engine, role)
    for stmt in statements:
        click.echo(stmt + ";")
    if apply_:
        click.echo(f"granted to {role}", err=True)


@main.command()
@config_option
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=3000, show_default=True, type=int)
@friendly
def serve(config: str | None, host: str, port: int) -> None:
    """Run the bot: HTTP endpoint, scheduler (polling, outbox, scheduled posts)."""
    from bot.serve import run

    settings = _settings(config)
    _setup_logging(settings)
    run(settings, host=host, port=port)


@main.command()
@config_option
@click.option("--once", is_flag=True, required=True, help="One pass over every account.")
@friendly
def poll(config: str | None, once: bool) -> None:
    """Poll every account for new mentions once (and run every [[listening]] search that
    is due), deliver alerts, then exit."""
    from bot import db
    from bot.services import listening
    from bot.services.polling import deliver_outbox_until_empty, poll_all

    settings = _settings(config)
    _setup_logging(settings)
    from bot.bootstrap import build_runtime  # the CLI imports each command's code lazily

    rt = build_runtime(settings)
    db.upgrade(rt.engine)
    results = poll_all(rt)
    heard = listening.run_due(rt, owner="poll-once")
    sent = deliver_outbox_until_empty(rt)
    for r in results:
        click.echo(f"{r.account}: {r.stored} new mention(s)" + (f" ({r.error})" if r.error else ""))
    for h in heard:
        if h.skipped != "not due":
            click.echo(f"listening {h.service} via {h.account} ({h.query}): {h.stored} heard"
                       + (f" ({h.error or h.skipped})" if h.error or h.skipped else ""))
    click.echo(f"{sent} Slack message(s) delivered")
    if any(r.error for r in results):
        sys.exit(1)


@main.group("audit")
def audit_group() -> None:
    """The tamper-evident audit trail."""


def _audit_engine() -> Any:
    from bot import db
    from bot.config import load_environment

    engine = db.make_engine(load_environment().database_url)
    db.check_reachable(engine)
    return engine


def _audit_keys_and_config(config: str | None) -> tuple[Any, Any]:
    """The audit keyring (None: no key given) and the config file's settings, if there
    is a config file (its [audit] section names the key file and the checkpoints)."""
    from bot.audit_keys import parse_keys
    from bot.config import load_environment, read_audit_key, read_config_file

    env = load_environment()
    path = Path(config or env.commsdesk_config)
    cfg = read_config_file(path) if config or path.exists() else None
    problems: list[str] = []
    from_file = read_audit_key(cfg, env, problems, required=False)
    if problems:
        _fail(problems)
    text = from_file or env.commsdesk_audit_key
    return (parse_keys(text) if text and text.strip() else None), cfg


def _anchor_check(session: Any, keyring: Any, cfg: Any) -> Any:
    """The trail against its checkpoints (None when none are configured)."""
    from bot.config import load_environment
    from bot.services import checkpoints

    if cfg is None or not (cfg.audit.checkpoint_channel or cfg.audit.checkpoint_file):
        return None
    found, sources, unread = [], [], []
    if cfg.audit.checkpoint_file:
        sources.append(cfg.audit.checkpoint_file)
        try:
            found += checkpoints.read_file(cfg.audit.checkpoint_file)
        except OSError as exc:
            unread.append(f"{cfg.audit.checkpoint_file}: {exc.strerror or exc}")
    if cfg.audit.checkpoint_channel:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        env = load_environment()
        sources.append(f"Slack channel {cfg.audit.checkpoint_channel}")
        try:
            found += checkpoints.read_slack(
                WebClient(token=env.slack_bot_token, base_url=env.slack_api_url, timeout=20),
                cfg.audit.checkpoint_channel)
        except (SlackApiError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
            unread.append(f"Slack channel {cfg.audit.checkpoint_channel}: {error}")
    result = checkpoints.check(session, found, keyring, cfg.audit.checkpoint_interval_minutes,
                               cfg.tz, " and ".join(sources))
    return result, [f"checkpoints could not be read from {u}" for u in unread]


@audit_group.command("verify")
@config_option
@friendly
def audit_verify(config: str | None) -> None:
    """Exit 0 if the audit trail is intact, 1 naming the first bad record, or the records
    gone since the latest checkpoint (read back from Slack or the checkpoint file)."""
    from bot import db
    from bot.services import audit

    keyring, cfg = _audit_keys_and_config(config)
    # a reading session: on SQLite a running bot's writers are not held up meanwhile
    with db.reading(db.make_sessionmaker(_audit_engine())) as session:
        from sqlalchemy import func, select

        from bot.models import AuditEvent

        total = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        if total > 50_000 and sys.stderr.isatty():
            with click.progressbar(length=total, label="verifying audit trail",
                                   file=sys.stderr) as bar:
                result = audit.verify(session, progress=bar.update,
                                      workers=audit.default_workers(total), total=total,
                                      keyring=keyring)
        else:
            result = audit.verify(session, workers=audit.default_workers(total), total=total,
                                  keyring=keyring)
        anchored = _anchor_check(session, keyring, cfg)
    problems = [] if result.ok else [result.message()]
    if anchored is not None:
        anchor, unread = anchored
        problems += unread + ([] if anchor.ok else anchor.lines)
        notes = anchor.lines if anchor.ok else []
    else:
        notes = ["no checkpoints configured ([audit] checkpoint_channel or checkpoint_file): "
                 "records removed from the end of the trail would not be noticed"]
    if problems:
        _fail(problems)
    click.echo(result.message())
    for note in notes:
        click.echo(note)


def _parse_date(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv")
@click.option("--since", default=None, help="From this date (YYYY-MM-DD, UTC), inclusive.")
@click.option("--until", default=None, help="Before this date (YYYY-MM-DD, UTC).")
@click.option("--actor", default=None, help="Only this Slack user id (or 'system').")
@click.option("--subject", default=None,
              help="Everything held about one resident (their @handle): subject access.")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None)
@click.option("--names/--no-names", default=True,
              help="Add a names column: the Slack ids' names, asked of Slack with "
                   "SLACK_BOT_TOKEN (ids are kept; without a token, no column).")
@friendly
def audit_export(
    fmt: str, since: str | None, until: str | None, actor: str | None, subject: str | None,
    output: str | None, names: bool,
) -> None:
    """Export the trail for auditors and FOI requests."""
    from sqlalchemy.orm import Session

    from bot.services import audit

    q = audit.export_query(_parse_date(since, "--since"), _parse_date(until, "--until"), actor)
    if subject is not None:
        from bot.services.subject_access import subject_export

        if fmt != "jsonl":
            raise click.BadParameter("use --format jsonl with --subject", param_hint="--format")
        with Session(_audit_engine()) as session:
            lines = list(subject_export(session, subject, q))
        text = "".join(lines)
        if output:
            Path(output).write_text(text, encoding="utf-8")
            click.echo(f"wrote {len(lines)} record(s) about @{subject.lstrip('@')} to {output}",
                       err=True)
        else:
            click.echo(text, nl=False)
        return
    with Session(_audit_engine()) as session:
        total = audit.count(session, q)
        named = None
        if names:
            from bot.config import load_environment
            from bot.services.slack_names import for_export

            env = load_environment()
            resolver = for_export(env.slack_bot_token, env.slack_api_url)
            named = resolver.of_row if resolver else None
        chunks = audit.iter_export(session, q, fmt, names=named)
        if output is None:
            for chunk in chunks:
                click.echo(chunk, nl=False)
            return
        with open(output, "w", encoding="utf-8", newline="") as fh:
            header = next(chunks) if fmt == "csv" else ""
            fh.write(header)
            with click.progressbar(
                chunks, length=total, label="exporting audit trail", file=sys.stderr
            ) as bar:
                for chunk in bar:
                    fh.write(chunk)
    click.echo(f"wrote {total} record(s) to {output}", err=True)


@main.group("retention")
def retention_group() -> None:
    """Residents' personal data kept no longer than the configured period."""


@retention_group.command("run")
@config_option
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@click.option("--days", type=int, default=None, help="Override retention.days for this run.")
@friendly
def retention_run(config: str | None, dry_run: bool, days: int | None) -> None:
    """Purge personal data older than retention.days (the audit trail keeps verifying)."""
    from bot import db
    from bot.services import retention

    settings = _settings(config, require_slack=False, require_network_credentials=False)
    if (days if days is not None else settings.config.retention.days) <= 0:
        # retention switched off is a setting, not an error: nothing to do, exit 0
        click.echo("Retention is off (retention.days = 0 keeps everything): nothing to "
                   "purge. Set [retention] days in the config, or pass --days N.")
        return
    from bot.bootstrap import build_runtime  # the CLI imports each command's code lazily

    rt = build_runtime(settings)
    db.upgrade(rt.engine)
    try:
        result = retention.run(rt, dry_run=dry_run, days=days)
    except ValueError as exc:
        _fail([str(exc)])
        return
    click.echo(result.summary())


@main.command()
def manifest() -> None:
    """Print the Slack app manifest (same as app_manifest.yaml)."""
    click.echo(_template_manifest(), nl=False)


def _template_manifest() -> str:
    # the one manifest is app_manifest.yaml at the top of the checkout; bot/app_manifest.yaml
    # links to it, so an installed wheel (which holds no top-level files) carries it too
    return importlib.resources.files("bot").joinpath("app_manifest.yaml").read_text("utf-8")


def _insight_db(settings: Settings) -> Any:
    """The database, reachable and migrated (read-only commands never migrate it)."""
    from bot import db

    engine = db.make_engine(settings.env.database_url)
    db.check_reachable(engine)
    current, head = db.schema_status(engine)
    if current != head:
        raise db.DatabaseError(f"the database is at revision {current or 'none'}, not {head}: "
                               "run `commsdesk db upgrade` first")
    return engine


@main.command()
@config_option
@click.argument("words", nargs=-1, metavar="[SERVICE|ACCOUNT] [7d|30d|YYYY-MM|YYYY-Www]")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table",
              show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default=None)
@friendly
def stats(config: str | None, words: tuple[str, ...], fmt: str, output: str | None) -> None:
    """Mentions in, replies out, response times in working hours, SLA met, busiest hours."""
    from sqlalchemy.orm import Session

    from bot.clock import now
    from bot.domain.stats import PeriodError
    from bot.services import stats as insight

    settings = _settings(config, require_slack=False, require_network_credentials=False,
                         require_audit_key=False)
    cfg = settings.config
    try:
        scope, period = insight.split_args(cfg, words, now())
    except PeriodError as err:
        _fail([str(err)])
        return
    with Session(_insight_db(settings)) as session:
        rows = insight.table(session, cfg, scope, period, now())
    text = insight.to_csv(rows) if fmt == "csv" else (
        f"{period.label} · {scope.label} · times in working hours\n\n" + insight.to_table(rows))
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {len(rows)} row(s) to {output}", err=True)


@main.command()
@config_option
@click.option("--week", default=None, metavar="YYYY-Www",
              help="ISO week (default: the last full week).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), default="report.png",
              show_default=True)
@friendly
def report(config: str | None, week: str | None, output: str) -> None:
    """The weekly report offline: its summary on stdout, its chart as a PNG file."""
    import re

    from sqlalchemy.orm import Session

    from bot.clock import now
    from bot.domain.stats import PeriodError
    from bot.services import report as weekly

    settings = _settings(config, require_slack=False, require_network_credentials=False,
                         require_audit_key=False)
    cfg = settings.config
    try:
        period = weekly.week_period(cfg, week, now())
    except PeriodError as err:
        _fail([str(err)])
        return
    with Session(_insight_db(settings)) as session:
        built = weekly.build(session, cfg, period, now())
    Path(output).write_bytes(weekly.render_png(built))
    plain = re.sub(r"^:[a-z_]+: ", "", weekly.summary(built)).replace("*", "")
    click.echo(plain)
    click.echo(f"chart written to {output}", err=True)


@main.command()
@config_option
@click.option("--week", default=None, metavar="YYYY-Www",
              help="ISO week (default: this week).")
@click.option("--ics", "ics_file", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Also write an iCalendar file (the week given, or four weeks back to "
              "thirteen ahead).")
@friendly
def calendar(config: str | None, week: str | None, ics_file: str | None) -> None:
    """Scheduled and published posts by day and account, what waits for approval, and
    pre-election periods."""
    from sqlalchemy.orm import Session

    from bot.clock import now
    from bot.services import calendar as cal

    settings = _settings(config, require_slack=False, require_network_credentials=False,
                         require_audit_key=False)
    cfg = settings.config
    try:
        start = cal.week_start(week, cfg.tz, now())
    except cal.WeekError as err:
        _fail([str(err)])
        return
    with Session(_insight_db(settings)) as session:
        shown = cal.build(session, cfg, start)
        feed = shown if week or not ics_file else cal.build(session, cfg,
                                                            *cal.feed_range(cfg, now()))
    click.echo(cal.text(shown))
    if ics_file:
        Path(ics_file).write_bytes(cal.ics(feed))
        click.echo(f"iCalendar ({len(feed.entries)} post(s)) written to {ics_file}", err=True)


@main.group("schedule")
def schedule_group() -> None:
    """Bulk scheduling."""


@schedule_group.command("import")
@config_option
@click.argument("csv_file", type=click.Path(dir_okay=False))
@click.option("--author", default="cli", show_default=True,
              help="Who the drafts are by (a Slack user id): they cannot approve them.")
@click.option("--no-post", is_flag=True, help="Store the drafts; leave the batch card to "
              "the running bot's outbox.")
@friendly
def schedule_import(config: str | None, csv_file: str, author: str, no_post: bool) -> None:
    """Drafts from a CSV (account(s), time, text, image, alt text, campaign). Every row is
    checked first; any bad row stores nothing (exit 1, naming each bad row and why)."""
    import time as _time

    from bot import db
    from bot.services import schedule_import as importer
    from bot.services.polling import deliver_outbox_until_empty

    settings = _settings(config)
    _setup_logging(settings)
    from bot.bootstrap import build_runtime  # the CLI imports each command's code lazily

    rt = build_runtime(settings)
    db.upgrade(rt.engine)
    path = Path(csv_file)
    started = _time.monotonic()
    lines = max(1, sum(1 for _ in path.open("rb"))) if path.is_file() else 1
    with click.progressbar(length=lines - 1, label="checking", file=sys.stderr) as bar:
        checked = importer.check(rt, path, progress=bar.update)
    if not checked.ok:
        click.echo(f"{path.name}: nothing was stored; fix these and import the file again:",
                   err=True)
        _fail(checked.problems)
    total = sum(len(r.accounts) for r in checked.rows)
    with click.progressbar(length=total, label="storing ", file=sys.stderr) as bar:
        done = importer.store(rt, checked, author, path.name, progress=bar.update)
    took = _time.monotonic() - started
    click.echo(f"{len(done.draft_ids)} draft(s) from {len(checked.rows)} row(s) stored as batch "
               f"{done.group_ref}, awaiting approval ({took:.1f} s).")
    if not no_post:
        deliver_outbox_until_empty(rt, timeout=30)
        click.echo("The batch card is in the approvals channel: approve row by row or all at "
                   "once.")


@main.command()
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--reset", is_flag=True, help="Start the demo afresh.")
@click.option("--data", "data_dir", default="demo-data", show_default=True,
              type=click.Path(file_okay=False))
@friendly
def demo(port: int, reset: bool, data_dir: str) -> None:
    """Everything offline: Slack's and every network's emulators and the real bot."""
    from bot.demo.runner import run_demo

    run_demo(port=port, reset=reset, data_dir=Path(data_dir))


if __name__ == "__main__":  # pragma: no cover
    main()
