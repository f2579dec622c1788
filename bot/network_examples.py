"""The networks' parts of what `commsdesk init` writes, from each integration's spec: the
commented `[[accounts]]` examples of `commsdesk.toml`, and the credentials and settings of
`.env.example`. Networks the example config uses are filled in; the others are commented
out."""

from __future__ import annotations

import re

from integrations import registry
from integrations.base import NetworkSpec

EXAMPLE_CRED = "NOTTSCC"  # the `credentials` key of the example config's accounts


def used_networks(example_config: str) -> set[str]:
    """Networks `example_config` has accounts on (uncommented `network = "..."` lines)."""
    return set(re.findall(r'^network\s*=\s*"([^"]+)"', example_config, re.M))


def _env_section(spec: NetworkSpec, used: bool) -> list[str]:
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
    """`.env.example`'s networks: every network's variables, those of the networks
    `example_config` uses ready to fill in."""
    used = used_networks(example_config)
    specs = sorted(registry.specs(), key=lambda s: (s.name not in used, s.name))
    return "\n\n".join("\n".join(_env_section(spec, spec.name in used)) for spec in specs) + "\n"


def _account_example(spec: NetworkSpec) -> list[str]:
    creds = spec.credentials
    rows = [("[[accounts]]", ""), (f'name = "nottscc-{spec.name}"', ""),
            (f'network = "{spec.name}"', ""), (f'handle = "{spec.example_handle}"', "")]
    rows += [(f'{f.name} = "{f.example or "..."}"', f.help) for f in spec.account_fields]
    reads = (f"{creds.prefix}_{EXAMPLE_CRED}_{creds.parts[0]}" if len(creds.parts) == 1
             else f"{creds.prefix}_{EXAMPLE_CRED}_* (see .env.example)")
    rows.append((f'credentials = "{EXAMPLE_CRED}"', f"reads {reads}"))
    width = max(len(code) for code, why in rows if why) + 2
    return [f"# {code:<{width}}# {why}".rstrip() if why else f"# {code}" for code, why in rows]


def other_accounts(example_config: str) -> str:
    """`commsdesk.toml`'s commented `[[accounts]]` example for each network the example
    config does not use yet."""
    used = used_networks(example_config)
    specs = sorted((s for s in registry.specs() if s.name not in used), key=lambda s: s.name)
    if not specs:
        return ""
    names = " | ".join(f'"{s.name}"' for s in specs)
    blocks = ["\n".join(_account_example(spec)) for spec in specs]
    return f"# Other networks (network = {names}):\n" + "\n#\n".join(blocks) + "\n"
