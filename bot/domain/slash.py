"""The `/social` grammar: text in, a typed command or one clear error out. No I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from integrations import registry

USAGE = {
    "help": "/social help",
    "reply": "/social reply <ref or post URL> <text>",
    "post": "/social post <account> <text>",
    "schedule": "/social schedule <account> <YYYY-MM-DD HH:MM> <text>",
    "pause": "/social pause <account|all> <reason>",
    "resume": "/social resume <account|all>",
    "whoami": "/social whoami",
    "stats": "/social stats [service|account] [7d|30d|YYYY-MM]",
    "saved": "/social saved [service]",
    "saved add": "/social saved add <[service/]name> <text>",
    "saved edit": "/social saved edit <[service/]name> <text>",
    "saved remove": "/social saved remove <[service/]name>",
    "reply saved": "/social reply <ref> saved:<name>",
    "calendar": "/social calendar [YYYY-Www]",
    "skip": "/social skip <draft> <reason>",
}

def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shown(key: str) -> str:
    return _escape(USAGE[key])


HELP_TEXT = (
    "*commsdesk* drafts posts for the comms team to approve. Nothing is published "
    "until an approver reacts with the approve emoji.\n"
    f"• `{_shown('reply')}`: draft a reply to a mention (the ref is on its alert, e.g. `M12`)\n"
    f"• `{_shown('post')}`: draft a new post for an account\n"
    f"• `{_shown('schedule')}`: draft a post for later (council time zone)\n"
    f"• `{_shown('whoami')}`: what you may do here, and why\n"
    f"• `{_shown('pause')}` / `{_shown('resume')}`: comms team only: stop and restart publishing\n"
    f"• `{_shown('stats')}`: mentions, replies, response times (working hours), SLA met\n"
    f"• `{_shown('saved')}`: the comms team's saved replies; `{_shown('reply saved')}` starts "
    "a draft from one (`{author}`, `{ref}`, `{service}` filled in)\n"
    f"• `{_shown('saved add')}` (also `edit`, `remove`): comms team only\n"
    "• several accounts, comma-separated (`/social post nottscc,nottscc-masto &lt;text&gt;`, "
    "`campaign:&lt;name&gt;` first to tag them): one campaign, a variant per account, one card\n"
    f"• `{_shown('calendar')}`: the week's scheduled and published posts (only you see it)\n"
    f"• `{_shown('skip')}`: comms team only: skip an approval step (audited)\n"
    f"• `{_shown('help')}`: this message"
)

_REF = re.compile(r"^[Mm](?P<id>\d{1,12})$")
# each network's post links (its spec's `post_urls`): one with an `id` group gives the
# post's id; the others are matched against the stored mention's URL
_POST_URLS = tuple((spec.name, re.compile(p.pattern)) for spec in registry.specs()
                   for p in spec.post_urls)
_POST_URL_EXAMPLES = ", ".join(p.example for spec in registry.specs() for p in spec.post_urls
                               if p.example)
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SLACK_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_SLACK_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_SLACK_SPECIAL = re.compile(r"<!([a-z]+)(?:\^[A-Z0-9]+)?(?:\|([^>]*))?>")


class SlashError(ValueError):
    """Bad command text; `message` says what was wrong and the right form."""

    def __init__(self, message: str, usage: str | None = None, *, show_help: bool = False):
        self.message = message
        self.usage = usage
        self.show_help = show_help
        super().__init__(message)

    def text(self) -> str:
        """For Slack: `&`, `<`, `>` escaped so the usage's <placeholders> show as typed."""
        usage = f"\nUse: `{_escape(self.usage)}`" if self.usage else ""
        more = f"\n\n{HELP_TEXT}" if self.show_help else ""
        message = self.message if len(self.message) <= 1000 else self.message[:999] + "…"
        return _escape(message) + usage + more


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class MentionRef:
    mention_id: int | None = None  # our short reference M<id>
    network: str | None = None  # or a post URL on a network
    external_id: str | None = None
    url: str | None = None  # networks whose links don't carry our id: the mention's URL


@dataclass(frozen=True)
class Reply:
    ref: MentionRef
    text: str
    saved: str | None = None  # `saved:<name>`: the draft starts from that saved reply


@dataclass(frozen=True)
class Post:
    account: str
    text: str


@dataclass(frozen=True)
class Schedule:
    account: str
    when: datetime  # naive, in the config time zone
    text: str


@dataclass(frozen=True)
class WhoAmI:
    pass


@dataclass(frozen=True)
class Pause:
    target: str  # account name or "all"
    reason: str


@dataclass(frozen=True)
class Resume:
    target: str


@dataclass(frozen=True)
class Stats:
    args: tuple[str, ...] = ()  # [service|account] [period], checked against the config later


@dataclass(frozen=True)
class Saved:
    """`/social saved ...`: list (optionally one service's), add, edit or remove."""

    action: str  # list|add|edit|remove
    scope: str = ""  # "" = every service, else the service's name
    name: str = ""
    text: str = ""


SAVED_NAME = re.compile(r"^(?:(?P<scope>[a-z0-9][a-z0-9_-]{0,63})/)?(?P<name>[a-z0-9][a-z0-9_-]{0,47})$")


def parse_saved_name(token: str, usage: str) -> tuple[str, str]:
    """`bins-missed` or `waste/bins-missed` (lower case) -> (scope, name)."""
    m = SAVED_NAME.match(token.lower())
    if m is None:
        raise SlashError(f"`{token[:60]}` is not a saved reply name: use letters, digits and "
                         "dashes (up to 48), optionally after a service and a slash "
                         "(`waste/bins-missed`).", usage)
    return m.group("scope") or "", m.group("name")


Command = Help | Reply | Post | Schedule | WhoAmI | Pause | Resume | Stats | Saved


def slack_to_plain(text: str) -> str:
    """Undo Slack's escaping of command text: links, mentions, `&amp;` `&lt;` `&gt;`."""
    text = _SLACK_LINK.sub(lambda m: m.group(1).removeprefix("mailto:"), text)
    text = _SLACK_USER.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = _SLACK_CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = _SLACK_SPECIAL.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clean_text(text: str) -> str:
    """Drop control characters (keep newlines and tabs) and trim."""
    kept = "".join(
        ch for ch in text
        if ch in "\n\t" or unicodedata.category(ch) != "Cc"
    )
    return kept.strip()


def parse_ref(token: str) -> MentionRef:
    token = token.strip("<>")
    m = _REF.match(token)
    if m:
        return MentionRef(mention_id=int(m.group("id")))
    bare = re.split(r"[?#]", token, maxsplit=1)[0].rstrip("/")
    for network, pattern in _POST_URLS:
        if "id" in pattern.groupindex:
            m = pattern.match(token)
            if m:
                return MentionRef(network=network, external_id=m.group("id"))
        elif pattern.match(bare):
            return MentionRef(network=network, url=bare)
    examples = f" ({_POST_URL_EXAMPLES})" if _POST_URL_EXAMPLES else ""
    raise SlashError(
        f"`{token}` is not a mention reference: use the ref shown on the alert (like `M12`) "
        f"or the post's link{examples}",
        USAGE["reply"],
    )


def _split(text: str, n: int) -> list[str]:
    """Split off n whitespace-separated words; the rest (with its newlines) stays whole."""
    parts: list[str] = []
    rest = text
    for _ in range(n):
        rest = rest.lstrip()
        if not rest:
            break
        m = re.match(r"\S+", rest)
        assert m is not None
        parts.append(m.group(0))
        rest = rest[m.end():]
    parts.append(rest.strip())
    return parts


def _check_target(target: str, verb: str) -> None:
    """Account names are short: anything longer is refused here, before it is stored."""
    if len(target) > 64:
        raise SlashError(f"`{target[:60]}…` is not an account name.", USAGE[verb])


def _parse_saved(rest: str) -> Saved:
    action, more = _split(rest, 1) if rest else ("", "")
    action = action.lower()
    if action in ("", "list"):
        scope = more.split()[0].lower() if more.split() else ""
        return Saved("list", scope=scope[:64])
    if action not in ("add", "edit", "remove"):
        if not more:  # `/social saved waste`: that service's saved replies
            return Saved("list", scope=action[:64])
        raise SlashError(f"`{action[:40]}` is not something /social saved knows: "
                         "add, edit or remove.", USAGE["saved add"])
    usage = USAGE[f"saved {action}"]
    token, text = _split(more, 1) if more else ("", "")
    if not token:
        raise SlashError("Say which saved reply.", usage)
    scope, name = parse_saved_name(token, usage)
    if action == "remove":
        if text:
            raise SlashError("`remove` takes only the name.", usage)
        return Saved("remove", scope, name)
    if not text:
        raise SlashError("The saved reply's text is missing.", usage)
    return Saved(action, scope, name, text)


def parse(raw: str) -> Command:
    text = clean_text(slack_to_plain(raw))
    if not text:
        return Help()
    verb, rest = _split(text, 1)
    verb = verb.lower()
    if verb in ("help", "?", "-h", "--help"):
        return Help()
    if verb == "reply":
        ref, body = _split(rest, 1) if rest else ("", "")
        if not ref:
            raise SlashError("Say which mention to reply to, then the reply.", USAGE["reply"])
        mref = parse_ref(ref)
        if not body:
            raise SlashError("The reply text is missing.", USAGE["reply"])
        if body.lower().startswith("saved:"):
            token = body[len("saved:"):]
            if not token or any(c.isspace() for c in token):
                raise SlashError("Name one saved reply and nothing else (edit the draft on "
                                 "its approval card afterwards).", USAGE["reply saved"])
            scope, name = parse_saved_name(token, USAGE["reply saved"])
            return Reply(mref, body, saved=f"{scope}/{name}" if scope else name)
        return Reply(mref, body)
    if verb == "post":
        account, body = _split(rest, 1) if rest else ("", "")
        if not account:
            raise SlashError("Say which account to post as, then the text.", USAGE["post"])
        if not body:
            raise SlashError("The post text is missing.", USAGE["post"])
        return Post(account.lower(), body)
    if verb == "schedule":
        parts = _split(rest, 3)
        if len(parts) < 4 or not parts[0]:
            raise SlashError(
                "Say which account, the date and time, then the text.", USAGE["schedule"]
            )
        account, day, clock, body = parts
        try:
            when = datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M")
        except ValueError:
            raise SlashError(
                f"`{day} {clock}` is not a date and time in the form YYYY-MM-DD HH:MM "
                "(24-hour clock).",
                USAGE["schedule"],
            ) from None
        if not body:
            raise SlashError("The post text is missing.", USAGE["schedule"])
        return Schedule(account.lower(), when, body)
    if verb == "whoami":
        return WhoAmI()
    if verb == "pause":
        target, reason = _split(rest, 1) if rest else ("", "")
        if not target:
            raise SlashError("Say which account to pause (or `all`), then why.", USAGE["pause"])
        if not reason:
            raise SlashError("Give a reason: it is shown to everyone and audited.", USAGE["pause"])
        _check_target(target, "pause")
        return Pause(target.lower(), reason)
    if verb == "resume":
        target = _split(rest, 1)[0] if rest else ""
        if not target:
            raise SlashError("Say which account to resume (or `all`).", USAGE["resume"])
        _check_target(target, "resume")
        return Resume(target.lower())
    if verb == "stats":
        args = tuple(rest.split())
        if len(args) > 2:
            raise SlashError("Give at most a service or account and a period.", USAGE["stats"])
        return Stats(args)
    if verb == "saved":
        return _parse_saved(rest)
    raise SlashError(f"`{verb}` is not something /social knows.", show_help=True)
