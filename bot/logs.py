"""Structured, quiet logs (structlog) that never print a secret.

One redaction, `redact`, for every text that leaves the process: every log record of every
library (a record factory redacts each record as it is made, so handlers that uvicorn,
httpx or anyone else install later are covered too; structlog's events go through
`_redact_processor`), and the network error text stored in the database or posted to
Slack (`integrations.base.NetworkError` redacts its message). It removes every configured
secret value (`add_secrets`, from `Settings.secrets()`), Slack tokens, bearer and basic
credentials, `Authorization` headers, and values of token-like query or form parameters
(`access_token=...`, `password=...`), and app passwords (`xxxx-xxxx-xxxx-xxxx`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import structlog

REDACTED = "[redacted]"
_TOKEN_RE = re.compile(r"\b(xox[abposre]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+)")
_SECRET_NAMES = (
    r"access_token|refresh_token|id_token|bearer_token|oauth_token|oauth_token_secret|"
    r"oauth_signature|oauth_consumer_key|oauth_verifier|consumer_key|consumer_secret|"
    r"access_token_secret|client_secret|app_secret|appsecret_proof|api_key|apikey|key|token|"
    r"secret|password|passwd|app_password|signing_secret|auth_token|session_token|"
    r"fb_exchange_token|input_token|accessJwt|refreshJwt"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_TOKEN_RE, REDACTED),
    # Authorization headers, in any shape (`Authorization: Bearer x`, `'Authorization': 'x'`)
    (re.compile(r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*)"
                r"(?:\"[^\"\r\n]*\"|'[^'\r\n]*'|[^\r\n]+)"), r"\1" + REDACTED),
    (re.compile(r"(?<![A-Za-z])([Bb]earer)(\s+)(?!\[redacted\])[A-Za-z0-9\-._~+/=%]{8,}"),
     r"\1\2" + REDACTED),
    (re.compile(r"(?<![A-Za-z])(Basic)(\s+)(?!\[redacted\])[A-Za-z0-9+/=]{12,}"),
     r"\1\2" + REDACTED),
    # token-like parameters: query strings and forms (`access_token=...`), JSON and reprs
    # (`"password": "..."`), and API-key headers (`X-Api-Key: ...`)
    (re.compile(r"(?i)(?<![A-Za-z0-9])((?:" + _SECRET_NAMES + r")=[\"']?)(?!\[redacted\])"
                r"[^&\s\"'<>#,;}\]]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)([\"'](?:" + _SECRET_NAMES + r")[\"']\s*:\s*[\"']?)(?!\[redacted\])"
                r"[^\"'\s,}\]]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)((?:x-)?(?:api-key|auth-token|access-token)\s*:\s*)(?!\[redacted\])\S+"),
     r"\1" + REDACTED),
    # app passwords (Bluesky's shape)
    (re.compile(r"(?<![A-Za-z0-9-])[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}"
                r"(?![A-Za-z0-9-])"), REDACTED),
)
_SENSITIVE_KEY = re.compile(r"(?i)authorization|cookie|token|secret|password|passwd|api.?key")
_SECRET_KEY = re.compile(r"(?i)^(?:proxy-)?(?:authorization|cookie|set-cookie|password|passwd|"
                         r"secret|[a-z_]*_secret|access_token|refresh_token|api_?key|x-api-key|"
                         r"bearer_token|app_password|token|private_key)$")
_secrets: set[str] = set()


def redact(text: str) -> str:
    """`text` with every secret value and token-shaped credential replaced by [redacted]."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def _scrub_item(key: Any, value: Any) -> Any:
    """A value under a credential's name (`password=`, `headers={"Authorization": …}`) is
    redacted whatever it looks like."""
    if value and isinstance(value, str) and _SECRET_KEY.match(str(key)):
        return REDACTED
    return _scrub(value)


def _redact_processor(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: _scrub_item(k, v) for k, v in event_dict.items()}


class _RedactingFilter(logging.Filter):
    """Scrubs records of third-party libraries (slack_sdk, tweepy, uvicorn) too."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_arg(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    clean = redact(text)
    return value if clean == text else clean


def _redact_record(record: logging.LogRecord) -> None:
    """Redact a stdlib record in place, keeping its shape (uvicorn's access formatter reads
    its args as a tuple)."""
    if getattr(record, "_commsdesk_redacted", False) or isinstance(record.msg, dict):
        return  # structlog's own records: redacted by the processor
    try:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        else:
            record.msg = _redact_arg(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {k: REDACTED if _SENSITIVE_KEY.search(str(k)) and v else _redact_arg(v)
                           for k, v in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(v) for v in record.args)
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
    except Exception:  # a library's odd record must not kill logging
        return
    record._commsdesk_redacted = True  # type: ignore[attr-defined]


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    _redact_record(record)
    return record


def install() -> None:
    """Every log record made in this process is redacted (idempotent)."""
    if logging.getLogRecordFactory() is not _redacting_factory:
        global _base_factory
        _base_factory = logging.getLogRecordFactory()
        logging.setLogRecordFactory(_redacting_factory)


# the libraries whose loggers may have their own handlers (uvicorn's dictConfig gives it
# some): a filter on each as well as on the root handler; each network's client library
# is added by the registry (its spec's `log_libraries`: `add_library_loggers`)
LIBRARY_LOGGERS = ["uvicorn", "uvicorn.access", "uvicorn.error", "httpx", "httpcore",
                   "slack_sdk", "slack_bolt", "urllib3", "requests_oauthlib",
                   "apscheduler", "alembic", "sqlalchemy"]


def add_library_loggers(names: Iterable[str]) -> None:
    LIBRARY_LOGGERS.extend(n for n in names if n not in LIBRARY_LOGGERS)


def add_secrets(values: Iterable[str | None]) -> None:
    for v in values:
        if v and len(v) >= 6:
            _secrets.add(v)
            if quote(v, safe="") != v:  # as it appears in a URL
                _secrets.add(quote(v, safe=""))
    install()


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record is emitted, not the stream it
    was when logging was configured: a background thread that logs after a test (or a
    CLI runner) swapped stderr back does not write to a closed stream."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str = "INFO", fmt: str = "console", secrets: Iterable[str | None] = ()) -> None:
    add_secrets(secrets)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_processor,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderr()
    handler.addFilter(_RedactingFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    install()
    for name in LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        if not any(isinstance(f, _RedactingFilter) for f in lib.filters):
            lib.addFilter(_RedactingFilter())
        for h in lib.handlers:
            if not any(isinstance(f, _RedactingFilter) for f in h.filters):
                h.addFilter(_RedactingFilter())
    root.setLevel(level.upper())
    # quiet the chatty libraries unless asked
    for name in ("slack_bolt", "slack_sdk", "urllib3", "httpx", "apscheduler", "tweepy",
                 "uvicorn.access", "alembic"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def get(name: str) -> Any:
    return structlog.get_logger(name)


install()
