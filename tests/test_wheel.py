"""A built wheel (what `pip install .` installs, without the checkout beside it) carries
everything the bot reads at run time: the Slack app manifest, the migrations, the
templates. The suite otherwise runs from the editable checkout, which hides a missing file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project_copy(to: Path) -> Path:
    """The project's files (tracked and new, not ignored), links kept as links."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in listed.splitlines():
        src, dst = ROOT / name, to / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    return to


def test_the_installed_wheel_has_the_manifest_and_migrations(tmp_path: Path) -> None:
    src = project_copy(tmp_path / "src")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("commsdesk-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site), "DATABASE_URL": f"sqlite:///{tmp_path}/c.db"}

    def commsdesk(*args: str) -> subprocess.CompletedProcess[str]:
        # run from an empty folder: only the unpacked wheel provides bot, handlers, ...
        return subprocess.run([sys.executable, "-c", "import sys, bot, bot.cli; "
                               "assert bot.__file__.startswith(sys.argv[1]), bot.__file__; "
                               "sys.argv[1:2] = []; bot.cli.main()", str(site), *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)

    shown = commsdesk("manifest")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (ROOT / "app_manifest.yaml").read_text("utf-8")
    upgraded = commsdesk("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
