"""``mcpzip pack``: the whole of mcpzip as one file, ``mcpzip.pyz``.

The archive is a standard-library zipapp of the package: ``python3 mcpzip.pyz
serve`` needs nothing else on disk for stdio servers.  ``--with-remote`` also
bundles ``requests``, ``sseclient-py`` and what they require, taken from the
running interpreter, so remote servers and OAuth work from that one file
where nothing can be installed.

Only Python source and data files go in: compiled extension modules cannot be
imported from a zip, and the libraries bundled here all have pure-Python
fallbacks for theirs (``charset_normalizer``'s speed-ups, for one).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tempfile
import zipapp
import zipfile
from importlib import metadata

import mcpzip

from . import CommandError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

REMOTE = ("requests", "sseclient-py")
MAIN = "import sys\n\nfrom mcpzip.cli import main\n\nsys.exit(main())\n"
# Files a zipapp can neither import nor needs.
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".dylib", ".dll", ".exe")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def run(args: argparse.Namespace) -> int:
    out = os.path.abspath(os.path.expanduser(args.out))
    with tempfile.TemporaryDirectory(prefix="mcpzip-pack-") as staging:
        _copy_package(staging)
        bundled = _copy_remote(staging) if args.with_remote else []
        with open(os.path.join(staging, "__main__.py"), "w", encoding="utf-8") as f:
            f.write(MAIN)
        try:
            zipapp.create_archive(staging, out, interpreter="/usr/bin/env python3", compressed=True)
        except OSError as e:
            raise CommandError(f"cannot write {out}: {e.strerror or e}") from e
    size = os.path.getsize(out)
    extra = f" with {', '.join(bundled)}" if bundled else " (stdio servers; add --with-remote for http/sse and OAuth)"
    print(f"wrote {out} ({size / 1024:.0f} KiB){extra}")
    print(f"run it with: python3 {_shell_path(out)} serve")
    return 0


def _copy_package(staging: str) -> None:
    """The ``mcpzip`` package as it runs now, from a directory or from inside a pyz."""
    source = os.path.dirname(os.path.abspath(mcpzip.__file__))
    if os.path.isdir(source):
        for folder, dirs, files in os.walk(source):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    _copy(path, os.path.join(staging, "mcpzip", os.path.relpath(path, source)))
        return
    # Running from a zip: its importer knows the archive, whatever it is called.
    archive = getattr(mcpzip.__loader__, "archive", None)
    if archive is None:
        raise CommandError(f"cannot find mcpzip's source files to pack (at {source})")
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():
            if member.startswith("mcpzip/") and member.endswith(".py"):
                z.extract(member, staging)


def _copy_remote(staging: str) -> list[str]:
    """Copy the runtime dependencies of remote servers and everything they require."""
    done: dict[str, metadata.Distribution] = {}
    todo = list(REMOTE)
    while todo:
        name = _canonical(todo.pop())
        if name in done:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as e:
            if name in REMOTE:
                raise CommandError(
                    f"--with-remote needs {name} in the interpreter running pack ({sys.executable}); "
                    f"install it with: {sys.executable} -m pip install {name}"
                ) from e
            continue  # a requirement for another Python (a backport) or platform
        done[name] = dist
        todo.extend(_requirements(dist))
    for dist in done.values():
        for file in dist.files or ():
            parts = file.parts
            if parts[0] == ".." or parts[0].endswith((".dist-info", ".egg-info")) or "__pycache__" in parts:
                continue
            if file.name.endswith(_SKIPPED_SUFFIXES):
                continue
            _copy(str(dist.locate_file(file)), os.path.join(staging, *parts))
    return sorted(f"{d.metadata['Name']} {d.version}" for d in done.values())


def _requirements(dist: metadata.Distribution) -> list[str]:
    """The names of what *dist* requires, leaving out optional extras."""
    names = []
    for requirement in dist.requires or ():
        _, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        match = _NAME.match(requirement)
        if match:
            names.append(match.group(1))
    return names


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _copy(source: str, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(source, target)


def _shell_path(path: str) -> str:
    return path if os.name == "nt" else shlex.quote(path)
