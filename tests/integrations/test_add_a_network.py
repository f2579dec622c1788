"""Adding a network is adding a folder: a copy of the project with a throwaway
`integrations/fakenet/` (a SPEC and a tiny Network class) and nothing else changed, and the
bot picks it up: config takes a "fakenet" account with its keys and credentials, slash
parsing knows its post links, labels, link hosts, the registry and the demo see it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKENET_INIT = '''
"""FakeNet: a network that exists only in this test."""

from integrations.base import AccountField, CredentialSpec, EnvSetting, NetworkSpec, PostUrl

SPEC = NetworkSpec(
    name="fakenet",
    label="FakeNet",
    credentials=CredentialSpec(prefix="FAKENET", parts=("TOKEN",)),
    build="integrations.fakenet.network:build",
    account_fields=(AccountField("space_id", "the space posts go to"),),
    settings=(EnvSetting("fakenet_api_base_url", "https://api.fakenet.example"),),
    base_url_setting="fakenet_api_base_url",
    length_rule=" (every character counts 1)",
    post_urls=(PostUrl(r"^https://fakenet\\.example/p/(?P<id>\\d{1,20})$",
                       example="https://fakenet.example/p/<id>"),),
    link_hosts=("fakenet.example",),
    demo="integrations.fakenet.demo:Seed",
)
'''

FAKENET_NETWORK = '''
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from integrations.base import Capability, MentionPage, NetworkBase, Published


class FakeNetwork(NetworkBase):
    network = "fakenet"
    capabilities = frozenset({Capability.POST})
    max_length = 100

    def __init__(self, account: Any, token: str, base_url: str) -> None:
        self.account, self.token, self.base_url = account, token, base_url

    def account_user_id(self) -> str:
        return "fake-1"

    def fetch_mentions(self, since_id: str | None) -> Iterator[MentionPage]:
        return iter(())

    def publish(self, text: str, *, in_reply_to: str | None = None,
                key: str | None = None) -> Published:
        return Published("1", self.post_url("1"))

    def find_published(self, text: str, *, in_reply_to: str | None, not_before: datetime,
                       key: str | None = None) -> Published | None:
        return None

    def followers(self) -> int:
        return 0

    def weighted_length(self, text: str) -> int:
        return len(text)

    def post_url(self, external_id: str, author_handle: str | None = None) -> str:
        return f"https://fakenet.example/p/{external_id}"


def build(account: Any, settings: Any) -> FakeNetwork:
    return FakeNetwork(account, settings.credentials_for(account)["token"],
                       settings.setting("fakenet_api_base_url"))
'''

FAKENET_DEMO = '''
from typing import Any


class Seed:
    emulator = None
    in_campaign = True

    def start(self, *, seed_mentions: bool) -> None: ...
    def deliver_webhooks(self, bot_url: str) -> None: ...
    def stop(self) -> None: ...

    def accounts(self) -> list[dict[str, Any]]:
        return [{"name": "council-fakenet", "network": "fakenet", "handle": "council",
                 "credentials": "DEMO", "space_id": "s1"}]

    def credentials(self) -> dict[tuple[str, str], dict[str, str]]:
        return {("fakenet", "DEMO"): {"token": "demo-token"}}

    def env(self) -> dict[str, Any]:
        return {"fakenet_api_base_url": "http://127.0.0.1:9"}
'''

TOML = '''
[slack]
approvals_channel = "C0APPROVALS"
default_channel = "C0COMMS"
approvers_usergroup = "S0COMMS"

[[accounts]]
name = "council-fakenet"
network = "fakenet"
handle = "council"
credentials = "NOTTS"
space_id = "s1"
'''

CHECK = '''
import re
import sys
from pathlib import Path

import bot.config
from bot import network_examples
from bot.blockkit.escape import link_hosts
from bot.blockkit.labels import account_label
from bot.config import ConfigError, load_settings
from bot.demo import data
from bot.demo.networks import OtherNetworks
from bot.domain import slash
from integrations import registry

here = Path(sys.argv[1])
assert Path(bot.config.__file__).is_relative_to(here), bot.config.__file__
assert "fakenet" in registry.names() and "fakenet" in bot.config.NETWORKS

settings = load_settings(here / "commsdesk.toml", require_slack=False, require_audit_key=False)
acc = settings.config.account("council-fakenet")
assert acc is not None and acc.space_id == "s1"
assert settings.network_credentials("fakenet", "NOTTS") == {"token": "fake-token-123"}
assert "fake-token-123" in settings.secrets()
assert settings.env.fakenet_api_base_url == "https://api.fakenet.example"
net = registry.build_network(acc, settings)
assert net.network == "fakenet" and net.token == "fake-token-123"

ref = slash.parse_ref("https://fakenet.example/p/42")
assert (ref.network, ref.external_id) == ("fakenet", "42"), ref
try:
    slash.parse_ref("https://elsewhere.example/p/42")
except slash.SlashError as exc:
    assert "https://fakenet.example/p/<id>" in exc.message, exc.message
else:
    raise AssertionError("an unknown link was taken")
assert account_label("council", "fakenet") == "@council on FakeNet"
assert link_hosts("fakenet") == ("fakenet.example",)
example_env = network_examples.network_credentials('network = "fakenet"')
assert "FAKENET_NOTTSCC_TOKEN=" in example_env.splitlines(), example_env
assert "# FAKENET_API_BASE_URL=https://api.fakenet.example" in example_env
example_toml = network_examples.other_accounts('network = "x"')
assert '# network = "fakenet"' in example_toml.splitlines(), example_toml
assert re.search(r'^# credentials = "NOTTSCC" +# reads FAKENET_NOTTSCC_TOKEN$', example_toml,
                 re.M), example_toml
assert re.search(r'^# space_id = "[.]{3}" +# the space posts go to$', example_toml, re.M)

others = OtherNetworks()
assert "fakenet" in others.seeds
others.start(seed_mentions=False)  # the demo's emulators (their URLs go in the config)
try:
    assert any(a["network"] == "fakenet" for a in others.accounts())
    assert others.credentials()[("fakenet", "DEMO")] == {"token": "demo-token"}
    assert others.env()["fakenet_api_base_url"] == "http://127.0.0.1:9"
    assert "council-fakenet" in data.campaign_command(others.campaign_accounts()).split()[1]
finally:
    others.stop()

(here / "missing.toml").write_text(
    (here / "commsdesk.toml").read_text().replace('space_id = "s1"', ""))
try:
    load_settings(here / "missing.toml", require_slack=False, require_audit_key=False)
except ConfigError as exc:
    assert any("needs space_id" in p for p in exc.problems), exc.problems
else:
    raise AssertionError("an account without its network's key was taken")
print("fakenet ok")
'''


def test_a_new_network_folder_is_picked_up(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for top in ("bot", "handlers", "integrations", "migrations"):
        shutil.copytree(ROOT / top, tmp_path / top, ignore=ignore)
    fake = tmp_path / "integrations" / "fakenet"
    fake.mkdir()
    (fake / "__init__.py").write_text(textwrap.dedent(FAKENET_INIT))
    (fake / "network.py").write_text(textwrap.dedent(FAKENET_NETWORK))
    (fake / "demo.py").write_text(textwrap.dedent(FAKENET_DEMO))
    (tmp_path / "commsdesk.toml").write_text(TOML)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKENET_", "COMMSDESK_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")]),
               FAKENET_NOTTS_TOKEN="fake-token-123")
    done = subprocess.run([sys.executable, "-c", CHECK, str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "fakenet ok" in done.stdout
