"""The networks' part of `.env.example` (`commsdesk init`), written from each integration's
spec: its credentials per account, its shared secrets and its settings. Networks the
example config uses are filled in; the others are commented out."""

from __future__ import annotations

import re

from integrations import registry
from integrations.base import NetworkSpec

EXAMPLE_CRED = "NOTTSCC"  # the `credentials` key of the example config's accounts


def _section(spec: NetworkSpec, used: bool) -> list[str]:
    on = "" if used else "# "
    creds = spec.credentials
    lines = [f"# {spec.label}: {creds.purpose}; one set per account's "
             f'`credentials = "<CRED>"` in commsdesk.toml.']
    needs = [f"{f.name} ({f.help})" if f.help else f.name
             for f in spec.account_fields if f.required]
    if needs:
        lines.append(f"# Its accounts also need {', '.join(needs)} in commsdesk.toml.")
    lines += [f"{on}{creds.prefix}_{EXAMPLE_CRED}_{part}=" for part in creds.parts]
    lines += [f"# {creds.prefix}_{EXAMPLE_CRED}_{part}=" for part in creds.optional]
    lines += [f"{on}{name}=" for name in creds.shared]
    lines += [f"# {s.name.upper()}={s.default or ''}" for s in spec.settings
              if s.name.upper() not in creds.shared]
    return lines


def network_credentials(example_config: str) -> str:
    """Every network's variables; those of networks `example_config` has accounts on
    (uncommented `network = "..."` lines) ready to fill in."""
    used = set(re.findall(r'^network\s*=\s*"([^"]+)"', example_config, re.M))
    specs = sorted(registry.specs(), key=lambda s: (s.name not in used, s.name))
    return "\n\n".join("\n".join(_section(spec, spec.name in used)) for spec in specs) + "\n"
