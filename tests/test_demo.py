"""The bundled demo (README quick start) shows a search, a describe and a call through mcpzip."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT, clean_env, procfs

DEMO = ROOT / "examples" / "demo.py"


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain *text* (Linux only; else none)."""
    return [procfs.cmdline(pid).replace(b"\0", b" ").decode("utf-8", "replace") for pid in procfs.processes_with(text)]


@pytest.mark.parametrize("installed", [False, True], ids=["checkout", "installed"])
def test_demo_searches_describes_and_calls_then_cleans_up(tmp_path, installed):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = clean_env(TMPDIR=str(tmp))
    if installed:  # what `pip install .` gives: mcpzip importable, so the demo runs `python -m mcpzip`
        env["PYTHONPATH"] = str(ROOT)
    before = set(os.listdir(DEMO.parent / "demo"))

    # A fresh checkout: mcpzip not importable, so the demo runs the checkout's
    # mcpzip.py.  (-S leaves out site-packages, where the test environment
    # itself may have installed mcpzip; the demo needs only the standard library.)
    python = [sys.executable] if installed else [sys.executable, "-S"]
    out = subprocess.run([*python, str(DEMO)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)  # fmt: skip

    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert ("-m mcpzip serve" in text) is installed and ("mcpzip.py serve" in text) is not installed
    assert "protocol 2025-11-25" in text
    for name in ("- calc", "- notes", "- scratch", "search_tools", "describe_tool", "execute_tool"):
        assert name in text
    search = text.split("== 3.")[1].split("== 4.")[0]
    assert search.index("calc__convert_units:") < search.index("[value:number*, from_unit:string*, to_unit:string*]")
    describe = text.split("== 4.")[1].split("== 5.")[0]
    assert '"name": "calc__convert_units"' in describe and '"required": [' in describe
    call = text.split("== 5.")[1]
    assert "26.2 mi = 42.1648 km" in call and "isError" not in call
    assert "exited with code 0" in text
    # Nothing left behind: no temporary files, no cache in the repository, no process.
    assert list(tmp.iterdir()) == []
    assert set(os.listdir(DEMO.parent / "demo")) == before
    assert processes_mentioning(str(tmp)) == []
