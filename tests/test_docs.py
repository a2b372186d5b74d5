"""The user guide keeps up with the code: every command, flag and config key is documented, every link resolves."""

from __future__ import annotations

import re

from conftest import ROOT

from mcpzip.base import config
from mcpzip.cli import build_parser

DOCS = ROOT / "docs"


def test_every_command_and_flag_is_in_the_cli_reference():
    text = (DOCS / "cli.md").read_text()
    parser = build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    assert commands.choices
    missing = []
    for name, sub in commands.choices.items():
        if f"## {name}" not in text:
            missing.append(f"section for {name}")
        for action in sub._actions:
            missing += [f"{name} {flag}" for flag in action.option_strings if flag not in ("-h", "--help") and flag not in text]
    assert not missing, f"docs/cli.md does not mention: {', '.join(missing)}"


def test_every_config_key_is_in_the_configuration_reference():
    text = (DOCS / "configuration.md").read_text()
    keys = (config.TOP_KEYS - {"search"}) | {f"search.{k}" for k in config.SEARCH_KEYS} | config.SERVER_KEYS | config.OAUTH_KEYS
    missing = sorted(k for k in keys if f"`{k}`" not in text)
    assert not missing, f"docs/configuration.md does not mention: {', '.join(missing)}"


def test_links_between_pages_resolve():
    broken = []
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).resolve().exists():
                broken.append(f"{page.name} -> {target}")
    assert not broken, broken
