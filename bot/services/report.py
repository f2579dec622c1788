"""The weekly report: a short summary and one chart (matplotlib, off-screen), posted to
the comms channel every week with Slack's files upload v2 flow (through the outbox),
or written to a file by `commsdesk report`."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.orm import Session

from bot import logs
from bot.clock import now
from bot.config import WEEKDAYS, Config
from bot.db import transaction
from bot.domain import stats
from bot.domain.stats import Figures, Period
from bot.models import OutboxMessage
from bot.runtime import Runtime
from bot.services import reach, triage
from bot.services.outbox import NotKnownYet, SlackCall, enqueue
from bot.services.reminders import claim_run, comms_channel
from bot.services.stats import Scope, table, total_figures

log = logs.get("commsdesk.report")

TREND_WEEKS = 8
COLOURS = {"mentions": "#1d3557", "replies": "#e76f51", "p50": "#2a9d8f", "p90": "#e9c46a",
           "sla": "#457b9d"}


@dataclass
class WeeklyReport:
    period: Period
    key: str  # 2026-W47
    total: Figures
    previous: Figures
    services: list[Figures]
    trend: list[tuple[str, Figures]]  # (label, figures) oldest first, this week last
    growth: list[reach.Growth]
    # handle -> new followers in each trend week (None: not counted that week)
    new_followers: dict[str, list[int | None]] = field(default_factory=dict)
    triage: list[str] = field(default_factory=list)  # mentions by priority and sentiment


def week_period(cfg: Config, key: str | None, at: datetime) -> Period:
    """`YYYY-Www`, or the last full week before `at`."""
    if not key:
        return stats.last_full_week(at, cfg.tz)
    p = stats.parse_period(key, at, cfg.tz)
    if not p.label.startswith("week "):
        raise stats.PeriodError(f"`{key}` is not an ISO week: use YYYY-Www, e.g. 2026-W05")
    return p


def build(s: Session, cfg: Config, period: Period, at: datetime) -> WeeklyReport:
    everything = Scope("all")
    rows = table(s, cfg, everything, period, at)
    total, services = rows[0], [r for r in rows[1:] if not r.scope.startswith("@")]
    start_day = period.start.astimezone(cfg.tz).date()
    previous = total_figures(s, cfg, stats.week_of(start_day - timedelta(days=7), cfg.tz), at)
    trend = []
    new_followers: dict[str, list[int | None]] = {}
    for back in range(TREND_WEEKS - 1, -1, -1):
        monday = start_day - timedelta(days=7 * back)
        p = stats.week_of(monday, cfg.tz)
        trend.append((f"W{stats.week_key(p, cfg.tz)[-2:]}",
                      total if back == 0 else total_figures(s, cfg, p, at)))
        for g in reach.growth(s, monday, monday + timedelta(days=6)):
            new_followers.setdefault(g.handle, []).append(g.gained)
    return WeeklyReport(
        period=period, key=stats.week_key(period, cfg.tz), total=total, previous=previous,
        services=services, trend=trend,
        growth=reach.growth(s, start_day, start_day + timedelta(days=6)),
        new_followers={h: v for h, v in new_followers.items() if any(x is not None for x in v)},
        triage=triage.breakdown_lines(s, period.start, period.end))


def _change(now_value: int, before: int) -> str:
    diff = now_value - before
    if diff == 0:
        return "same as the week before"
    return f"{'▲' if diff > 0 else '▼'} {abs(diff)} on the week before"


def summary(r: WeeklyReport) -> str:
    t = r.total
    lines = [f":bar_chart: *Weekly report · {r.period.label}*",
             f"Mentions in: *{t.mentions_in}* ({_change(t.mentions_in, r.previous.mentions_in)})"
             f" · Replies out: *{t.replies_out}* · New posts: *{t.posts_out}*",
             f"Time to reply: p50 {stats.hours_text(t.reply_p50)} · p90 "
             f"{stats.hours_text(t.reply_p90)} (working hours) · SLA met: "
             f"{stats.pct_text(t.sla_met_pct)}"
             + (f" ({t.sla_met} of {t.sla_due} due)" if t.sla_due else "")]
    busiest = max(r.services, key=lambda f: f.mentions_in, default=None)
    extras = []
    if busiest is not None and busiest.mentions_in:
        extras.append(f"Busiest service: {busiest.scope} ({busiest.mentions_in} mentions)")
    if t.busiest_hours:
        h = t.busiest_hours[0][0]
        extras.append(f"Busiest hour: {stats.hour_range(h)}")
    if extras:
        lines.append(" · ".join(extras))
    reach_parts = []
    for g in r.growth:
        if g.followers is None:
            continue
        gained = "" if g.gained is None else f" ({g.gained:+,} this week)"
        reach_parts.append(f"@{g.handle} {g.followers:,}{gained}")
    if reach_parts:
        lines.append("Followers: " + " · ".join(reach_parts))
    lines += r.triage
    return "\n".join(lines)


def alt_text(r: WeeklyReport) -> str:
    t = r.total
    per = ", ".join(f"{f.scope} {f.mentions_in} in / {f.replies_out} replies" for f in r.services)
    return (f"Chart for {r.period.label}: {t.mentions_in} mentions and {t.replies_out} replies "
            f"({per}); median time to reply {stats.hours_text(t.reply_p50)}; follower counts "
            f"over {TREND_WEEKS} weeks.")[:1000]


def render_png(r: WeeklyReport, dpi: int = 100) -> bytes:
    """The chart as PNG bytes, drawn off-screen (matplotlib's Agg canvas, no pyplot).

    Drawn in a short-lived child process (`python -m bot.services.report`), unless
    matplotlib is loaded here already: matplotlib, numpy and their fonts stay resident
    once imported (~50 MB), which a long-running `serve` would otherwise carry for a
    chart it draws once a week (bench/memory_soak.py)."""
    if "matplotlib" in sys.modules:
        return _draw_png(r, dpi)
    done = subprocess.run([sys.executable, "-m", "bot.services.report"],
                          input=pickle.dumps((r, dpi)), capture_output=True, timeout=300,
                          check=False)
    if done.returncode != 0 or not done.stdout.startswith(b"\x89PNG"):
        raise RuntimeError("drawing the weekly chart failed: "
                           + done.stderr.decode("utf-8", "replace")[-2000:])
    return done.stdout


def _draw_png(r: WeeklyReport, dpi: int = 100) -> bytes:
    # lazy: matplotlib is heavy and only the report's short-lived drawing child needs it
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7.5), dpi=dpi, layout="constrained")
    fig.suptitle(f"commsdesk weekly report · {r.period.label}", fontsize=14, fontweight="bold")
    (ax1, ax2), (ax3, ax4) = fig.subplots(2, 2)

    # mentions and replies per service
    names = [f.scope for f in r.services] or ["(none)"]
    inn = [f.mentions_in for f in r.services] or [0]
    out = [f.replies_out for f in r.services] or [0]
    xs = range(len(names))
    ax1.bar([x - 0.2 for x in xs], inn, width=0.4, label="mentions in", color=COLOURS["mentions"])
    ax1.bar([x + 0.2 for x in xs], out, width=0.4, label="replies out", color=COLOURS["replies"])
    ax1.set_xticks(list(xs), names, rotation=20 if len(names) > 4 else 0, ha="right"
                   if len(names) > 4 else "center")
    ax1.set_title("Mentions and replies per service")
    ax1.yaxis.get_major_locator().set_params(integer=True)
    ax1.legend(frameon=False)

    # response time trend
    labels = [label for label, _ in r.trend]
    p50 = [f.reply_p50 if f.reply_p50 is not None else float("nan") for _, f in r.trend]
    p90 = [f.reply_p90 if f.reply_p90 is not None else float("nan") for _, f in r.trend]
    ax2.plot(labels, p50, marker="o", label="p50", color=COLOURS["p50"])
    ax2.plot(labels, p90, marker="o", label="p90", color=COLOURS["p90"])
    ax2.set_title("Time to reply (working hours)")
    ax2.set_ylabel("hours")
    ax2.set_ylim(bottom=0)
    ax2.legend(frameon=False)

    # new followers per week, per account (the seed report's reach figure)
    totals = {g.handle: g.followers for g in r.growth}
    if r.new_followers:
        width = 0.8 / len(r.new_followers)
        for i, (handle, gains) in enumerate(r.new_followers.items()):
            now_total = totals.get(handle)
            ax3.bar([x - 0.4 + width * (i + 0.5) for x in range(len(labels))],
                    [g or 0 for g in gains], width=width,
                    label=f"@{handle}" + (f" ({now_total:,})" if now_total else ""))
        ax3.set_xticks(range(len(labels)), labels)
        ax3.axhline(0, color="grey", linewidth=0.8)
        ax3.legend(frameon=False, fontsize=9)
    else:
        ax3.text(0.5, 0.5, "no follower counts yet", ha="center", va="center",
                 transform=ax3.transAxes, color="grey")
    ax3.set_title("New followers per week (total now)")

    # SLA met per week
    pct = [f.sla_met_pct if f.sla_met_pct is not None else 0.0 for _, f in r.trend]
    ax4.bar(labels, pct, color=COLOURS["sla"])
    ax4.set_ylim(0, 100)
    ax4.set_title("Response target met (%)")
    for x, (value, (_, f)) in enumerate(zip(pct, r.trend, strict=True)):
        if f.sla_due:
            ax4.text(x, value + 2, f"{value:.0f}", ha="center", fontsize=8)

    for ax in (ax1, ax2, ax3, ax4):
        ax.spines[["top", "right"]].set_visible(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


# ---------------------------------------------------------------- weekly schedule


def due_week(cfg: Config, at: datetime) -> Period | None:
    """The week whose report is due at `at` (the report moment of this week has passed)."""
    local = at.astimezone(cfg.tz)
    monday = local.date() - timedelta(days=local.weekday())
    day = monday + timedelta(days=WEEKDAYS.index(cfg.insight.weekly_report_day))
    moment = datetime.combine(day, cfg.insight.weekly_report_time, tzinfo=cfg.tz)
    if local < moment:
        return None
    return stats.week_of(monday - timedelta(days=7), cfg.tz)


def run_weekly(rt: Runtime) -> bool:
    """Queue last week's report for the comms channel, once (whatever replicas or restarts)."""
    cfg = rt.settings.config
    if not cfg.insight.weekly_report:
        return False
    period = due_week(cfg, now())
    if period is None:
        return False
    key = stats.week_key(period, cfg.tz)
    with transaction(rt.sessions) as s:
        if not claim_run(s, "weekly_report", key):
            return False
        enqueue(s, comms_channel(cfg), "weekly_report", payload={"week": key})
    rt.kick_outbox()
    log.info("weekly report queued", week=key)
    return True


def queue_report(rt: Runtime, week: str, channel: str | None = None) -> None:
    """Post a week's report now (the demo and admins), whatever the schedule says."""
    with transaction(rt.sessions) as s:
        enqueue(s, channel or comms_channel(rt.settings.config), "weekly_report",
                payload={"week": week})
    rt.kick_outbox()


def _already_uploaded(rt: Runtime, channel: str, filename: str, since: datetime) -> bool:
    """Whether the channel already shows this report (a retry after a lost answer)."""
    try:
        resp = rt.outbox_slack.conversations_history(
            channel=channel, oldest=f"{since.timestamp() - 60:.6f}", limit=200)
    except (SlackApiError, SlackClientError, OSError) as exc:
        raise NotKnownYet(f"could not check the channel before uploading again: {exc}") \
            from exc
    return any(f.get("name") == filename for msg in resp.get("messages") or []
               for f in msg.get("files") or [])


def render_weekly_report(s: Session, row: OutboxMessage, rt: Runtime) -> SlackCall | None:
    cfg = rt.settings.config
    period = week_period(cfg, str(row.payload["week"]), now())
    filename = f"commsdesk-report-{stats.week_key(period, cfg.tz)}.png"
    if row.attempts > 1 and _already_uploaded(rt, row.channel, filename, row.created_at):
        return None  # an earlier try got there before its answer was lost
    report = build(s, cfg, period, now())
    png = render_png(report)
    kwargs: dict[str, Any] = {
        "channel": row.channel, "file": png, "filename": filename,
        "title": f"Weekly report {report.key}", "initial_comment": summary(report),
        "alt_txt": alt_text(report),
    }
    return SlackCall("files_upload_v2", kwargs)


if __name__ == "__main__":  # render_png's child: a pickled (WeeklyReport, dpi) in, PNG out
    import pickle
    import sys

    _report, _dpi = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(_draw_png(_report, _dpi))
