"""Typed settings: `commsdesk.toml` (what the bot does) + environment / `.env` (secrets).

Everything is validated by pydantic; problems are collected into one list of
human sentences naming the key, never a traceback (see `ConfigError`).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import load_dotenv
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.audit_keys import AuditKeyError, parse_keys
from integrations import registry
from integrations.base import CredentialSpec

# the networks, as `integrations/<network>/__init__.py` describe themselves (registry)
NETWORKS = registry.names()
SECRET_KEY_HINTS = ("token", "secret", "password", "api_key", "apikey", "private_key")

_CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_USERGROUP_RE = re.compile(r"^S[A-Z0-9]{2,}$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CRED_RE = re.compile(r"^[A-Z0-9_]+$")


class ConfigError(Exception):
    """One or more problems with the configuration; each is a full sentence."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _channel_id(value: str) -> str:
    if not _CHANNEL_RE.match(value):
        raise ValueError(
            f"{value!r} is not a Slack channel id (it looks like C0123ABCD; "
            "copy it from the channel's details, not its #name)"
        )
    return value


def _usergroup_id(value: str) -> str:
    if not _USERGROUP_RE.match(value):
        raise ValueError(f"{value!r} is not a Slack user group id (it looks like S0123ABCD)")
    return value


def _reaction(value: str) -> str:
    value = value.strip().strip(":")
    if not value or " " in value:
        raise ValueError("give an emoji name without colons, e.g. white_check_mark")
    return value


ChannelId = Annotated[str, AfterValidator(_channel_id)]
UsergroupId = Annotated[str, AfterValidator(_usergroup_id)]
Reaction = Annotated[str, AfterValidator(_reaction)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackConfig(_Strict):
    approvals_channel: ChannelId
    default_channel: ChannelId
    approvers_usergroup: UsergroupId
    approve_reaction: Reaction = "white_check_mark"
    reject_reaction: Reaction = "x"
    admins_usergroup: UsergroupId | None = None  # IT / digital officers


class _AccountBase(_Strict):
    """An account's keys every network shares; `AccountConfig` adds each network's own
    (its spec's `account_fields`, e.g. a Mastodon account's `base_url`)."""

    name: str
    network: str
    handle: str
    user_id: str | None = None
    credentials: str
    # tiered permissions (all optional)
    approvers_usergroup: UsergroupId | None = None  # may approve for this account only
    drafters_usergroup: UsergroupId | None = None  # only they (and approvers) may draft
    required_approvals: int = Field(default=1, ge=1, le=2)
    # ordered approval steps (issue 21), each a user group: each step's approver is a
    # different person from every earlier step's and from every author and editor
    approval_steps: list[UsergroupId] = Field(default_factory=list, max_length=3)

    @model_validator(mode="after")
    def _network_keys(self) -> _AccountBase:
        spec = registry.spec(self.network)
        missing = [k for k in (spec.account_keys() if spec else ()) if not getattr(self, k)]
        if missing:
            raise ValueError(f"a {self.network} account needs {', '.join(missing)}")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError("use lower-case letters, digits, '-' or '_' (it is typed in /social)")
        return v

    @field_validator("network")
    @classmethod
    def _network(cls, v: str) -> str:
        if v not in NETWORKS:
            raise ValueError(f"unknown network {v!r}; known networks: {', '.join(NETWORKS)}")
        return v

    @field_validator("handle")
    @classmethod
    def _handle(cls, v: str) -> str:
        v = v.lstrip("@")
        if not v:
            raise ValueError("the account's handle is empty")
        return v

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, v: str | None, info: ValidationInfo) -> str | None:
        spec = registry.spec(info.data.get("network", ""))
        if v is not None and spec is not None and spec.numeric_user_id and not v.isdigit():
            raise ValueError(f"{v!r} is not a numeric {spec.label} user id")
        return v

    @field_validator("credentials")
    @classmethod
    def _credentials(cls, v: str, info: ValidationInfo) -> str:
        if not _CRED_RE.match(v):
            spec = registry.spec(info.data.get("network", ""))
            names = spec.credentials.pattern() if spec else "<NETWORK>_<CRED>_*"
            raise ValueError(
                f"use upper-case letters, digits and '_' (it names environment variables {names})"
            )
        return v


def _url_field(cls: type, v: str | None) -> str | None:
    if v is not None and not re.match(r"^https?://[^/\s]+", v):
        raise ValueError(f"{v!r} is not an http(s) URL (e.g. https://social.example)")
    return v.rstrip("/") if v else v


def _account_model() -> type[_AccountBase]:
    """`_AccountBase` with every network's own account keys (optional here; the
    network's spec says which its accounts need)."""
    fields: dict[str, Any] = {}
    urls: list[str] = []
    for spec in registry.specs():
        for f in spec.account_fields:
            fields[f.name] = (str | None, Field(default=None, description=f.help))
            if f.url:
                urls.append(f.name)
    validators = {"_urls": field_validator(*urls)(_url_field)} if urls else {}
    return create_model("AccountConfig", __base__=_AccountBase, __validators__=validators,
                        __module__=__name__, **fields)


AccountConfig = _account_model()


class ServiceConfig(_Strict):
    name: str
    channel: ChannelId
    keywords: list[str] = Field(default_factory=list)
    accounts: list[str] = Field(default_factory=list)
    authors: list[str] = Field(default_factory=list)
    drafters_usergroup: UsergroupId | None = None  # only they may reply to its mentions
    sla_hours: float | None = Field(default=None, gt=0, le=1000)  # working hours; unset: insight default
    # triage (issue 20): whole words or phrases that make a mention urgent, e.g. "flood"
    urgent_keywords: list[str] = Field(default_factory=list)
    urgent_sla_hours: float | None = Field(default=None, gt=0, le=1000)  # unset: insight's
    # private messages (Messenger, Mastodon direct) are alerted here, text and all;
    # unset: in the service's channel, with their text hidden
    private_channel: ChannelId | None = None

    @field_validator("keywords", "urgent_keywords")
    @classmethod
    def _keywords(cls, v: list[str]) -> list[str]:
        cleaned = [k.strip() for k in v]
        if any(not k for k in cleaned):
            raise ValueError("a keyword is blank")
        return cleaned

    @field_validator("authors")
    @classmethod
    def _authors(cls, v: list[str]) -> list[str]:
        return [a.strip().lstrip("@").lower() for a in v]

    @model_validator(mode="after")
    def _routes_something(self) -> ServiceConfig:
        if not self.keywords and not self.accounts and not self.authors:
            raise ValueError(
                "keywords is empty and the service names no accounts or authors, "
                "so nothing would ever reach it"
            )
        return self


PURDAH_EXPLANATION = (
    "Pre-election period: the Recommended Code of Practice on Local Authority Publicity "
    "asks councils not to publish anything that could be seen as seeking to influence "
    "voters, and to take particular care with publicity about candidates and "
    "controversial issues."
)

DEFAULT_SAFEGUARDING_TERMS = [
    "suicide", "suicidal", "kill myself", "end my life", "self harm", "self-harm",
    "hurting myself", "overdose", "abuse", "abused", "abusing", "neglect", "neglected",
    "child at risk", "not safe at home", "scared to go home", "hits me", "beaten",
    "domestic violence", "grooming", "exploited", "exploitation", "trafficked",
]


class PurdahPeriod(_Strict):
    name: str
    start: date
    end: date  # inclusive
    accounts: list[str] = Field(default_factory=list)  # empty: every account
    rule: Literal["block", "second_approval"] = "block"
    approvers_usergroup: UsergroupId | None = None  # for second_approval
    explanation: str = PURDAH_EXPLANATION

    @model_validator(mode="after")
    def _sane(self) -> PurdahPeriod:
        if self.end < self.start:
            raise ValueError("end is before start")
        if self.rule == "second_approval" and self.approvers_usergroup is None:
            raise ValueError("rule second_approval needs approvers_usergroup")
        return self


CheckLevel = Literal["off", "warn", "block"]


class HouseStyleConfig(_Strict):
    length: CheckLevel = "block"
    blocked_words: CheckLevel = "block"
    flagged_words: CheckLevel = "warn"
    hashtag_case: CheckLevel = "warn"
    alt_text: CheckLevel = "block"
    link_domains: CheckLevel = "warn"
    personal_data: CheckLevel = "block"
    blocked_word_list: list[str] = Field(default_factory=list)
    flagged_word_list: list[str] = Field(default_factory=list)
    approved_domains: list[str] = Field(default_factory=list)  # empty: any domain


class SafeguardingConfig(_Strict):
    channel: ChannelId | None = None  # private escalation channel; unset: off
    terms: list[str] = Field(default_factory=lambda: list(DEFAULT_SAFEGUARDING_TERMS))
    hide_text_in_service_channel: bool = True


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class OfficeHoursConfig(_Strict):
    """When response times count: working days, opening hours (council time zone) and
    bank holidays (a UK nation from the `holidays` package, or "none")."""

    days: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"])
    start: time = time(9, 0)
    end: time = time(17, 0)
    bank_holidays: Literal["england", "wales", "scotland", "northern-ireland", "none"] = "england"
    closed_dates: list[date] = Field(default_factory=list)  # e.g. the Christmas closure

    @model_validator(mode="after")
    def _sane(self) -> OfficeHoursConfig:
        if not self.days:
            raise ValueError("days is empty: name at least one working day, e.g. [\"mon\"]")
        if self.end <= self.start:
            raise ValueError("end must be after start (same day, 24-hour clock)")
        return self


class InsightConfig(_Strict):
    """Response-time targets, reminders, the daily digest and the weekly report."""

    comms_channel: ChannelId | None = None  # digests and reports; unset: slack.default_channel
    default_sla_hours: float = Field(default=4.0, gt=0, le=1000)  # working hours
    urgent_sla_hours: float = Field(default=1.0, gt=0, le=1000)  # urgent mentions' target
    reminders: bool = True  # thread reminders at 75% and 100% of a mention's SLA
    daily_digest: bool = True
    digest_time: time = time(9, 0)  # working days, council time
    weekly_report: bool = True
    weekly_report_day: Weekday = "mon"
    weekly_report_time: time = time(9, 0)


class RetentionConfig(_Strict):
    days: int = Field(default=0, ge=0)  # 0: keep residents' personal data until purged by hand


class AuditConfig(_Strict):
    """The audit trail's key and checkpoints (see domain/audit.py, services/checkpoints.py)."""

    key_file: str | None = None  # holds the audit key(s), instead of COMMSDESK_AUDIT_KEY
    checkpoint_channel: ChannelId | None = None  # signed checkpoints posted here (#comms-audit)
    checkpoint_file: str | None = None  # and/or appended here (an append-only file)
    checkpoint_interval_minutes: int = Field(default=60, ge=1, le=60)  # at least hourly


# networks with a search commsdesk uses (their spec names a `search` module)
LISTENING_NETWORKS = tuple(s.name for s in registry.specs() if s.search)


class ListeningConfig(_Strict):
    """Posts that name the council without an @ ("heard"), found with each network's
    search (`integrations/<network>/search.py`) and alerted in the service's channel (services/listening.py)."""

    service: str
    terms: list[str]  # phrases and #hashtags, any case
    accounts: list[str]  # searched with these accounts' networks and credentials
    interval_seconds: int = Field(default=300, ge=30, le=86400)  # how often each is searched
    budget: int = Field(default=30, ge=1, le=10000)  # search requests per budget window
    budget_window_minutes: int = Field(default=15, ge=1, le=1440)

    @field_validator("terms")
    @classmethod
    def _terms(cls, v: list[str]) -> list[str]:
        cleaned = [" ".join(t.split()) for t in v]
        if not cleaned or any(not t or t == "#" for t in cleaned):
            raise ValueError("name at least one term, none blank")
        if any(len(t) > 100 or '"' in t for t in cleaned):
            raise ValueError("a term is longer than 100 characters or holds a double quote")
        return cleaned

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("name at least one account to search with")
        return v


class LinksConfig(_Strict):
    """Tracked links (issue 21): links to these domains (and their subdomains) get UTM
    parameters before approval: source = the network, medium = social, campaign = the
    campaign's name."""

    tracked_domains: list[str] = Field(default_factory=list)

    @field_validator("tracked_domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        out = []
        for d in v:
            d = d.strip().lower().removeprefix("https://").removeprefix("http://").strip("/")
            if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", d):
                raise ValueError(f"{d!r} is not a domain (e.g. nottinghamshire.gov.uk)")
            out.append(d)
        return out


class Config(_Strict):
    timezone: str = "Europe/London"
    poll_interval_seconds: int = Field(default=60, ge=10, le=86400)
    slack: SlackConfig
    accounts: list[AccountConfig] = Field(default_factory=list)
    services: list[ServiceConfig] = Field(default_factory=list)
    purdah: list[PurdahPeriod] = Field(default_factory=list)
    house_style: HouseStyleConfig = Field(default_factory=HouseStyleConfig)
    safeguarding: SafeguardingConfig = Field(default_factory=SafeguardingConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    office_hours: OfficeHoursConfig = Field(default_factory=OfficeHoursConfig)
    insight: InsightConfig = Field(default_factory=InsightConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    links: LinksConfig = Field(default_factory=lambda: LinksConfig())
    listening: list[ListeningConfig] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a known time zone (e.g. Europe/London)") from None
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        problems: list[str] = []
        seen: set[str] = set()
        for i, acc in enumerate(self.accounts):
            if acc.name in seen:
                problems.append(f"accounts[{i}].name: duplicate account name {acc.name!r}")
            seen.add(acc.name)
        svc_seen: set[str] = set()
        for i, svc in enumerate(self.services):
            if svc.name in svc_seen:
                problems.append(f"services[{i}].name: duplicate service name {svc.name!r}")
            svc_seen.add(svc.name)
            for name in svc.accounts:
                if name not in seen:
                    problems.append(
                        f"services[{i}].accounts: unknown account {name!r}"
                        + _suggest(name, sorted(seen))
                    )
        for i, listen in enumerate(self.listening):
            if listen.service not in svc_seen:
                problems.append(f"listening[{i}].service: unknown service {listen.service!r}"
                                + _suggest(listen.service, sorted(svc_seen)))
            for name in listen.accounts:
                acc = next((a for a in self.accounts if a.name == name), None)
                if acc is None:
                    problems.append(f"listening[{i}].accounts: unknown account {name!r}"
                                    + _suggest(name, sorted(seen)))
                elif acc.network not in LISTENING_NETWORKS:
                    problems.append(f"listening[{i}].accounts: {name!r} is on {acc.network}, "
                                    "which commsdesk cannot search (only "
                                    + ", ".join(LISTENING_NETWORKS) + ")")
        for i, period in enumerate(self.purdah):
            for name in period.accounts:
                if name not in seen:
                    problems.append(
                        f"purdah[{i}].accounts: unknown account {name!r}"
                        + _suggest(name, sorted(seen))
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def account(self, name: str) -> AccountConfig | None:
        return next((a for a in self.accounts if a.name == name), None)


class _EnvironmentBase(BaseSettings):
    """Process environment (after `.env` is loaded). Secrets live only here.
    `Environment` adds each network's settings (its spec's `settings`)."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///commsdesk.db"
    database_migration_url: str | None = None  # owner role for migrations (PostgreSQL)
    commsdesk_audit_key: str | None = None  # the audit chain's key(s): see audit_keys.py
    commsdesk_calendar_token: str | None = None  # the calendar feed's URL secret (serve)
    commsdesk_config: str = "./commsdesk.toml"
    commsdesk_log_format: Literal["console", "json"] = "console"
    commsdesk_log_level: str = "INFO"

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)


def _environment_model() -> type[_EnvironmentBase]:
    fields: dict[str, Any] = {}
    for spec in registry.specs():
        for s in spec.settings:
            fields[s.name] = (str if s.default is not None else str | None, s.default)
    return create_model("Environment", __base__=_EnvironmentBase, __module__=__name__,
                        **fields)


Environment = _environment_model()


def _secret_settings() -> tuple[str, ...]:
    return tuple(s.name for spec in registry.specs() for s in spec.settings if s.secret)


@dataclass(frozen=True)
class Settings:
    config: Config
    env: _EnvironmentBase
    config_path: Path
    # (network, CRED) -> {"access_token": ..., ...}: its spec's credential parts, lower-cased
    credentials: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    audit_key: str | None = None  # the audit key(s) read from [audit] key_file

    def audit_keyring(self) -> Any:
        """The audit keys (`audit_keys.Keyring`), or None when none is configured."""
        text = self.audit_key or self.env.commsdesk_audit_key
        return parse_keys(text) if text and text.strip() else None

    def network_credentials(self, network: str, cred: str) -> dict[str, str] | None:
        return self.credentials.get((network, cred))

    def credentials_for(self, account: _AccountBase) -> dict[str, str]:
        """An account's credentials, or a ConfigError naming the variables to set."""
        creds = self.network_credentials(account.network, account.credentials)
        if creds is None:
            names = ", ".join(credential_spec(account.network).names(account.credentials))
            raise ConfigError([f"accounts '{account.name}': {registry.label(account.network)} "
                               f"credentials {names} are not set"])
        return creds

    def setting(self, name: str) -> Any:
        """A network's setting (its spec's `settings`) by name."""
        return getattr(self.env, name)

    def secrets(self) -> list[str]:
        """Every secret value in play, so logs can scrub them."""
        values = [self.env.slack_bot_token, self.env.slack_signing_secret, self.env.slack_app_token,
                  self.env.commsdesk_calendar_token]
        values += [getattr(self.env, name) for name in _secret_settings()]
        # each audit key, however it was given (a key too short to use signs nothing)
        with contextlib.suppress(ValueError):
            values += (self.audit_keyring() or _NO_KEYS).secrets()
        for parts in self.credentials.values():
            values += list(parts.values())
        for url in (self.env.database_url, os.environ.get("DATABASE_MIGRATION_URL")):
            with contextlib.suppress(ValueError):  # a database password in a URL
                values.append(urlsplit(url).password if url else None)
        values.append(os.environ.get("COMMSDESK_AUDIT_KEY"))
        return [v for v in values if v and len(v) >= 6]


# ---------------------------------------------------------------- loading


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """Valid key names at the parent of `loc` (for 'did you mean')."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fld = model.model_fields.get(part)
        if fld is None:
            return []
        ann = fld.annotation
        args = getattr(ann, "__args__", None)
        model = args[0] if args else ann
        if not isinstance(model, type) or not issubclass(model, BaseModel):
            return []
    return list(model.model_fields)


def _describe(err: dict[str, Any], data: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    key = _loc(loc)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        if any(h in name.lower() for h in SECRET_KEY_HINTS):
            return (
                f"{key}: secrets must not be in the config file; put them in the "
                "environment or .env (see .env.example)"
            )
        return f"{key}: unknown key" + _suggest(name, _fields_at(loc))
    if kind == "missing":
        return f"{key}: required but missing"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return f"{key}: {msg.lower()} (got {err.get('input')!r})"
    return f"{key}: {msg}"


def parse_config(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            text = _describe(dict(err), data)
            # cross-checks report several problems joined in one message
            if err["type"] == "value_error" and not err["loc"]:
                problems += [p.strip() for p in text.split(": ", 1)[-1].split("; ")]
            else:
                problems.append(text)
        raise ConfigError(problems) from None


def read_config_file(path: Path) -> Config:
    if not path.exists():
        raise ConfigError(
            [f"config file {str(path)!r} not found: run `commsdesk init` to write one, "
             "or set COMMSDESK_CONFIG"]
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot be read: {exc}"]) from None
    return parse_config(data)


def load_environment(dotenv_path: Path | None = None) -> _EnvironmentBase:
    load_dotenv(dotenv_path or Path.cwd() / ".env", override=False)
    return Environment()


def credential_spec(network: str) -> CredentialSpec:
    """The `CredentialSpec` a network's integration declares (its `SPEC.credentials`)."""
    spec = registry.spec(network)
    if spec is None:
        raise KeyError(f"unknown network {network!r}")
    return spec.credentials


def _network_credentials(
    config: Config, problems: list[str]
) -> dict[tuple[str, str], dict[str, str]]:
    """Credentials of every account, as its integration's `CredentialSpec` names them
    (`<PREFIX>_<CRED>_<PART>`, optional parts read when set)."""
    creds: dict[tuple[str, str], dict[str, str]] = {}
    for acc in config.accounts:
        if (acc.network, acc.credentials) in creds:
            continue
        spec = credential_spec(acc.network)
        prefix = f"{spec.prefix}_{acc.credentials}_"
        values = {p: os.environ.get(prefix + p, "").strip() for p in spec.parts + spec.optional}
        missing = [prefix + p for p in spec.parts if not values[p]]
        if missing:
            problems.append(
                f"accounts '{acc.name}': environment variable(s) {', '.join(missing)} not set "
                f"({registry.label(acc.network)} credentials are {spec.purpose})"
            )
            continue
        creds[(acc.network, acc.credentials)] = {p.lower(): v for p, v in values.items() if v}
    for network in sorted({a.network for a in config.accounts}):
        for name in credential_spec(network).shared:
            if not os.environ.get(name, "").strip():
                problems.append(f"{name} is not set (needed by the {network} accounts)")
    return creds


class _NoKeys:
    def secrets(self) -> list[str]:
        return []


_NO_KEYS = _NoKeys()


def read_audit_key(config: Config | None, env: Environment, problems: list[str],
                   required: bool = True) -> str | None:
    """The audit key(s): `COMMSDESK_AUDIT_KEY`, else the file `[audit] key_file` names."""
    text, source = env.commsdesk_audit_key, "COMMSDESK_AUDIT_KEY"
    key_file = config.audit.key_file if config is not None else None
    if not (text and text.strip()) and key_file:
        source = f"audit.key_file {key_file!r}"
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"{source} cannot be read: {exc.strerror or exc}")
            return None
    if not (text and text.strip()):
        if required:
            problems.append("COMMSDESK_AUDIT_KEY is not set (the audit trail's key, kept "
                            "outside the database: `commsdesk init` writes a fresh one into "
                            ".env.example; or name a key file in [audit] key_file)")
        return None
    try:
        parse_keys(text, source)
    except AuditKeyError as exc:
        problems.append(str(exc))
        return None
    return text if source != "COMMSDESK_AUDIT_KEY" else None


def load_settings(
    config_path: Path | None = None,
    *,
    require_slack: bool = True,
    require_network_credentials: bool = True,
    require_audit_key: bool = True,
) -> Settings:
    """Load `.env`, the environment and the config file; raise ConfigError listing every problem."""
    env = load_environment()
    path = Path(config_path or env.commsdesk_config)
    problems: list[str] = []
    config: Config | None = None
    try:
        config = read_config_file(path)
    except ConfigError as exc:
        problems += exc.problems
    if require_slack:
        if not env.slack_bot_token:
            problems.append("SLACK_BOT_TOKEN is not set (the bot token, xoxb-...)")
        elif not env.slack_bot_token.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN does not look like a bot token (it starts with xoxb-)")
        if not env.socket_mode and not env.slack_signing_secret:
            problems.append(
                "SLACK_SIGNING_SECRET is not set (needed in HTTP mode to verify requests from Slack)"
            )
        if env.slack_app_token and not env.slack_app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN does not look like an app-level token (xapp-...)")
    if not re.match(r"^[a-z0-9+]+://", env.database_url):
        problems.append(f"DATABASE_URL {env.database_url!r} is not a database URL")
    creds: dict[tuple[str, str], dict[str, str]] = {}
    if config is not None and require_network_credentials:
        creds = _network_credentials(config, problems)
    audit_key = read_audit_key(config, env, problems, require_audit_key)
    if problems or config is None:
        raise ConfigError(problems)
    return Settings(config=config, env=env, config_path=path, credentials=creds,
                    audit_key=audit_key)
