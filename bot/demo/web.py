"""The demo page (Starlette + Jinja2): server-rendered regions, refreshed by short polling."""

from __future__ import annotations

import importlib.resources
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.demo import data, model
from bot.demo.actions import ActionError, World
from bot.demo.mrkdwn import post_text
from bot.services import audit
from integrations import registry

HERE = Path(str(importlib.resources.files("bot.demo")))
PEOPLE = {p.id: p for p in data.PEOPLE}
CHANNEL_IDS = {cid for cid, _, _ in data.CHANNELS}


def _jinja() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["post_text"] = post_text
    return env


class Regions:
    """Renders each live region of the page for one person and channel."""

    def __init__(self, world: World):
        self.world = world
        self.env = _jinja()
        self._verified: tuple[int, Any] = (-1, None)
        self.seen: dict[str, dict[str, float]] = {}  # person -> channel -> newest ts seen

    def _render(self, name: str, **ctx: Any) -> str:
        return self.env.get_template(name).render(**ctx)

    def _verify(self, total: int) -> Any:
        if self._verified[0] != total:
            with self.world.rt.sessions() as s:
                self._verified = (total, audit.verify(s))
        return self._verified[1]

    def all(self, me: str, channel: str) -> dict[str, Markup]:
        state = self.world.slack.state()
        names = model.Names(state)
        seen = self.seen.setdefault(me, {})
        model.mark_seen(state, channel, seen)
        out = {
            "sk-sidebar": self._render("_sidebar.html",
                                       sb=model.sidebar(state, me, channel, seen)),
            "sk-main": self._main(state, names, me, channel),
            "sk-modal": self._modal(state, names, me),
            "public-posts": self._render("_public.html",
                                     timelines=model.public_timelines(self.world.stage)),
        }
        rows, total = model.audit_rows(self.world.rt, names)
        out["audit"] = self._render("_audit.html", rows=rows, total=total,
                                    verified=self._verify(total))
        return {k: Markup(v) for k, v in out.items()}

    def _main(self, state: dict[str, Any], names: model.Names, me: str, channel: str) -> str:
        if channel == model.HOME:
            home = {"view": model.home_view(state, me), "person": names.user(me)}
            return self._render("_main.html", home=home, names=names)
        info = {"name": channel_name(channel), "is_dm": channel.startswith("D"),
                "purpose": next((p for c, _, p in data.CHANNELS if c == channel), "")}
        return self._render("_main.html", home=None, channel=info, names=names,
                            items=model.timeline(state, channel, me, names))

    def _modal(self, state: dict[str, Any], names: model.Names, me: str) -> str:
        modal = model.open_modal(state, me)
        errors = self.world.view_errors.get(modal["id"], {}) if modal else {}
        return self._render("_modal.html", modal=modal, errors=errors, names=names)


def channel_name(channel: str) -> str:
    if channel == model.HOME:
        return "Home"
    if channel.startswith("D"):
        return "commsdesk"
    return model.data_channel_name(channel)


def _person(value: Any) -> str:
    if value not in PEOPLE:
        raise ActionError("Choose who you are first.")
    return str(value)


def _channel(value: Any, me: str) -> str:
    if value in CHANNEL_IDS or value == model.HOME or value == "D" + me[1:]:
        return str(value)
    raise ActionError("Choose a channel first.")


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


class LocalOnly:
    """Answers only requests addressed to this machine's loopback name and the demo's port
    (`Host: 127.0.0.1:<port>` or `localhost:<port>`); anything else gets 421. The demo
    lets whoever opens the page act as anyone, so a page on another site that points its
    own name at 127.0.0.1 (DNS rebinding) must not reach it."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        self.app, self.port = app, port
        self.hosts = {f"{name}:{port}".encode() for name in ("127.0.0.1", "localhost")}
        if port == 80:
            self.hosts |= {b"127.0.0.1", b"localhost"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((v for k, v in scope["headers"] if k == b"host"), b"").lower()
            if host not in self.hosts:
                await PlainTextResponse(
                    "This is commsdesk's local demo: it answers only at "
                    f"http://127.0.0.1:{self.port}/ and is never to be exposed.",
                    status_code=421)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(world: World, port: int) -> Starlette:
    """The demo page, answering only at 127.0.0.1/localhost on `port` (LocalOnly)."""
    regions = Regions(world)

    def where(request: Request) -> tuple[str, str]:
        me = request.query_params.get("as")
        me = me if me in PEOPLE else data.PEOPLE[0].id
        ch = request.query_params.get("ch") or PEOPLE[me].home_channel
        try:
            ch = _channel(ch, me)
        except ActionError:
            ch = PEOPLE[me].home_channel
        return me, ch

    async def page(request: Request) -> Response:
        me, ch = where(request)
        rendered = await run_in_threadpool(regions.all, me, ch)
        html = regions.env.get_template("page.html").render(
            people=data.PEOPLE, accounts=data.ACCOUNTS, me=me, ch=ch, regions=rendered,
            stage=world.stage, stage_label=registry.label(world.stage.network),
            channel_name=channel_name(ch), url_for=request.url_for,
            boot={"as": me, "ch": ch, "poll_ms": 1000})
        return HTMLResponse(html)

    async def state(request: Request) -> Response:
        me, ch = where(request)
        rendered = await run_in_threadpool(regions.all, me, ch)
        return JSONResponse({"as": me, "ch": ch, "channel_label": channel_name(ch),
                             "regions": {k: str(v) for k, v in rendered.items()}},
                            headers={"Cache-Control": "no-store"})

    def action(fn: Callable[[dict[str, Any]], str]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            # JSON only: a cross-site form post cannot reach these without a preflight
            if request.headers.get("content-type", "").split(";")[0] != "application/json":
                return JSONResponse({"ok": False, "message": "send JSON"}, status_code=415)
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ActionError("send a JSON object")
                message = await run_in_threadpool(fn, body)
            except ActionError as exc:
                return JSONResponse({"ok": False, "message": str(exc)}, status_code=400)
            except ValueError:
                return JSONResponse({"ok": False, "message": "bad JSON"}, status_code=400)
            return JSONResponse({"ok": True, "message": message})

        return endpoint

    def compose(b: dict[str, Any]) -> str:
        me = _person(b.get("as"))
        ch = _channel(b.get("channel"), me)
        if ch == model.HOME:
            raise ActionError("The Home tab has no message box.")
        return world.compose(me, ch, str(b.get("text") or ""))

    def click(b: dict[str, Any]) -> str:
        me = _person(b.get("as"))
        return world.click(me, _channel(b.get("channel"), me), str(b.get("ts")),
                           str(b.get("action_id")), _opt(b.get("block_id")), _opt(b.get("value")))

    def view_click(b: dict[str, Any]) -> str:
        return world.view_click(_person(b.get("as")), str(b.get("view_id")),
                                str(b.get("action_id")), _opt(b.get("block_id")),
                                _opt(b.get("value")))

    def submit(b: dict[str, Any]) -> str:
        values = b.get("values") if isinstance(b.get("values"), dict) else {}
        return world.submit(_person(b.get("as")), str(b.get("view_id")), values)

    def close(b: dict[str, Any]) -> str:
        return world.close_view(_person(b.get("as")), str(b.get("view_id")))

    def react(b: dict[str, Any]) -> str:
        me = _person(b.get("as"))
        name = str(b.get("name") or "")
        if name not in ("white_check_mark", "x"):
            raise ActionError("Only ✅ and ❌ are offered here.")
        return world.react(me, _channel(b.get("channel"), me), str(b.get("ts")), name)

    def home(b: dict[str, Any]) -> str:
        return world.open_home(_person(b.get("as")))

    def mention(b: dict[str, Any]) -> str:
        return world.add_mention(str(b.get("account") or ""), str(b.get("handle") or ""),
                                 str(b.get("text") or ""))

    async def file(request: Request) -> Response:
        """An image a message carries (e.g. the weekly report chart), from the emulator."""
        content = world.slack.file_content(str(request.path_params["file_id"]))
        if content is None:
            return Response("no such file", status_code=404)
        return Response(content, media_type="image/png")

    routes = [
        Route("/", page),
        Route("/file/{file_id}", file),
        Route("/state", state),
        *[Route(f"/api/{name}", action(fn), methods=["POST"]) for name, fn in (
            ("compose", compose), ("click", click), ("view-click", view_click),
            ("submit", submit), ("close", close), ("react", react), ("home", home),
            ("mention", mention))],
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(LocalOnly, port=port)])
