"""Every network's credentials come from the environment as its integration declares them
(`integrations/<net>/__init__.py: SPEC.credentials`), X's too (with its optional bearer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import NETWORKS, ConfigError, credential_spec, load_settings
from integrations import registry

TOML = """
[slack]
approvals_channel = "C0APPROVALS"
default_channel = "C0COMMS"
approvers_usergroup = "S0COMMS"

[[accounts]]
name = "masto"
network = "mastodon"
handle = "NottsCC"
credentials = "NOTTSCC"
base_url = "https://mastodon.example/"

[[accounts]]
name = "bsky"
network = "bluesky"
handle = "nottscc.bsky.social"
credentials = "NOTTSCC"

[[accounts]]
name = "fb"
network = "facebook"
handle = "nottinghamshirecc"
credentials = "NOTTSCC"
page_id = "1000001"
"""

ENV = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "signing-secret",
       "MASTODON_NOTTSCC_ACCESS_TOKEN": "masto-token-123", "BLUESKY_NOTTSCC_APP_PASSWORD":
       "abcd-efgh-ijkl-mnop", "FACEBOOK_NOTTSCC_PAGE_ACCESS_TOKEN": "EAAB-page-token",
       "FACEBOOK_APP_SECRET": "fb-app-secret-123"}


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "commsdesk.toml"
    path.write_text(TOML)
    return path


def test_credentials_per_network(cfg: Path) -> None:
    s = load_settings(cfg)
    assert s.network_credentials("mastodon", "NOTTSCC") == {"access_token": "masto-token-123"}
    assert s.network_credentials("bluesky", "NOTTSCC") == {"app_password": "abcd-efgh-ijkl-mnop"}
    assert s.env.facebook_app_secret == "fb-app-secret-123"
    assert {"masto-token-123", "abcd-efgh-ijkl-mnop", "EAAB-page-token",
            "fb-app-secret-123"} <= set(s.secrets())
    assert s.config.account("masto").base_url == "https://mastodon.example"  # type: ignore[union-attr]
    for acc in s.config.accounts:
        assert registry.build_network(acc, s).network == acc.network


def test_missing_ones_are_all_named(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("MASTODON_NOTTSCC_ACCESS_TOKEN", "BLUESKY_NOTTSCC_APP_PASSWORD", "FACEBOOK_APP_SECRET"):
        monkeypatch.delenv(k)
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    text = "\n".join(exc.value.problems)
    for k in ("MASTODON_NOTTSCC_ACCESS_TOKEN", "BLUESKY_NOTTSCC_APP_PASSWORD", "FACEBOOK_APP_SECRET"):
        assert k in text


def test_every_network_declares_credentials_and_a_builder() -> None:
    for net in NETWORKS:
        assert credential_spec(net).parts
        spec = registry.spec(net)
        assert spec is not None and callable(registry.load(spec.build))


X_TOML = """
[slack]
approvals_channel = "C0APPROVALS"
default_channel = "C0COMMS"
approvers_usergroup = "S0COMMS"

[[accounts]]
name = "nottscc"
network = "x"
handle = "NottsCC"
user_id = "1111"
credentials = "NOTTSCC"
"""

X_ENV = {"X_NOTTSCC_CONSUMER_KEY": "ck-123456", "X_NOTTSCC_CONSUMER_SECRET": "cs-123456",
         "X_NOTTSCC_ACCESS_TOKEN": "1111-at-123456", "X_NOTTSCC_ACCESS_TOKEN_SECRET": "ats-123456"}


def test_x_credentials_through_the_generic_path(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for k, v in {**ENV, **X_ENV}.items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "commsdesk.toml"
    path.write_text(X_TOML)
    s = load_settings(path)
    assert s.network_credentials("x", "NOTTSCC") == {
        "consumer_key": "ck-123456", "consumer_secret": "cs-123456",
        "access_token": "1111-at-123456", "access_token_secret": "ats-123456"}
    monkeypatch.setenv("X_NOTTSCC_BEARER_TOKEN", "bearer-123456")
    s = load_settings(path)
    assert s.network_credentials("x", "NOTTSCC")["bearer_token"] == "bearer-123456"  # type: ignore[index]
    assert "bearer-123456" in s.secrets()
    assert registry.build_network(s.config.accounts[0], s).network == "x"
    monkeypatch.delenv("X_NOTTSCC_ACCESS_TOKEN_SECRET")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert "X_NOTTSCC_ACCESS_TOKEN_SECRET" in "\n".join(exc.value.problems)


def test_credentials_key_names_the_networks_variables(tmp_path: Path) -> None:
    bad = X_TOML.replace('credentials = "NOTTSCC"', 'credentials = "notts"')
    (tmp_path / "c.toml").write_text(bad)
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path / "c.toml", require_slack=False, require_audit_key=False)
    assert "X_<CRED>_*" in "\n".join(exc.value.problems)
    masto = TOML.replace('credentials = "NOTTSCC"\nbase_url', 'credentials = "n"\nbase_url', 1)
    (tmp_path / "m.toml").write_text(masto)
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path / "m.toml", require_slack=False, require_audit_key=False)
    assert "MASTODON_<CRED>_*" in "\n".join(exc.value.problems)
