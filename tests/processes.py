"""`commsdesk serve` as a real child process, against emulators in the test process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import AUDIT_KEY, BOT_TOKEN, SIGNING_SECRET, free_port


def to_toml(config: dict[str, Any]) -> str:
    """Enough TOML for our config shape (tables, arrays of tables, scalars, lists)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in config.items() if not isinstance(v, dict | list)
             or (isinstance(v, list) and not (v and isinstance(v[0], dict)))]
    for k, v in config.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines.append(f"\n[[{k}]]")
                lines += [f"{kk} = {value(vv)}" for kk, vv in item.items() if vv is not None]
    return "\n".join(lines) + "\n"


def bot_env(tmp: Path, config: dict[str, Any], database_url: str, slack_api_url: str,
            x_api_base_url: str, extra_env: dict[str, str] | None = None,
            name: str = "bot") -> dict[str, str]:
    """The environment a deployed bot would have (config file written to tmp)."""
    cfg_path = tmp / f"{name}.toml"
    cfg_path.write_text(to_toml(config))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "X_", "COMMSDESK_", "DATABASE_URL"))}
    env.update({
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url, "X_API_BASE_URL": x_api_base_url,
        "DATABASE_URL": database_url, "COMMSDESK_CONFIG": str(cfg_path),
        "COMMSDESK_LOG_FORMAT": "json", "COMMSDESK_AUDIT_KEY": AUDIT_KEY,
    })
    for acc in config["accounts"]:
        cred = acc["credentials"]
        low = cred.lower()
        env.update({
            f"X_{cred}_CONSUMER_KEY": f"ck-{low}",
            f"X_{cred}_CONSUMER_SECRET": f"cs-{low}-secret",
            f"X_{cred}_ACCESS_TOKEN": f"{acc.get('user_id') or '1'}-at-{low}",
            f"X_{cred}_ACCESS_TOKEN_SECRET": f"ats-{low}-secret",
        })
    env.update(extra_env or {})
    return env


class ServeProcess:
    def __init__(self, tmp: Path, config: dict[str, Any], database_url: str, slack_api_url: str,
                 x_api_base_url: str, extra_env: dict[str, str] | None = None,
                 name: str = "bot"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = bot_env(tmp, config, database_url, slack_api_url, x_api_base_url, extra_env, name)
        self.log_path = tmp / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port)],
            cwd=tmp, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve did not become ready:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._log.close()
