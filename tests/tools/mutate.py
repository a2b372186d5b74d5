#!/usr/bin/env python3
"""A mutation check: does the suite notice a one-line bug in a behaviour users rely on?

    python tests/tools/mutate.py [--only NAME[,NAME]] [--list] [--no-baseline] [--keep-going]

Each mutation below changes one line of mcpzip in a way that breaks a
promise (most of them those of docs/security.md; every module that guards
one of those promises has at least one), then runs only the test files that
should notice.  A mutation is *killed* when those tests fail, and *survives*
when they pass.  The score is killed / applied; every survivor has a test or
a reason in SURVIVORS.

Nothing in the working tree is touched: the tracked files are copied into a
temporary directory, mutated there one at a time and restored after each
run, and the copy is removed at the end — also when interrupted (Ctrl-C).
Bytecode is not written (``PYTHONDONTWRITEBYTECODE``), so a mutated module
can never be run from a stale ``.pyc`` after it is restored.

Run it with the interpreter of a development environment (``.venv/bin/python``:
pytest, pytest-timeout and the MCP SDK installed).  It takes about ten
minutes on two cores: run only the relevant tests, stop at the first failure.

Last full run (2026-12-04, Python 3.11): 37 of 40 applied mutations killed,
over 18 modules; verify-off was left out (its test failed unmutated, see
SURVIVORS) and is killed when run alone.  The three survivors have reasons.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PER_TEST_TIMEOUT = 180

# (name, file, line as written, the mutated line, tests that should notice, the promise)
# A "line" is an exact substring that occurs once in the file.
MUTATIONS = [
    # -- base/log.py: masking (docs/security.md "Logs and errors") ------------------
    ("mask-first-only", "mcpzip/base/log.py", 'text = text.replace(secret, "***")',
     'text = text.replace(secret, "***", 1)',
     ["tests/test_security.py::test_list_masks_every_form_of_a_secret_a_failing_server_prints",
      "tests/test_security.py::test_an_error_body_quoting_a_secret_reaches_the_model_masked",
      "tests/test_survivors.py::test_every_occurrence_inside_a_line_and_a_secret_within_another_are_masked"],
     "a secret is masked at every occurrence in a line"),
    ("mask-shortest-first", "mcpzip/base/log.py", "sorted(_secrets, key=len, reverse=True)", "sorted(_secrets, key=len)",
     ["tests/test_security.py::test_list_masks_every_form_of_a_secret_a_failing_server_prints",
      "tests/test_survivors.py::test_every_occurrence_inside_a_line_and_a_secret_within_another_are_masked"],
     "a secret inside another: the longer one is masked whole"),
    ("mask-no-json-form", "mcpzip/base/log.py", "_json.encode_basestring_ascii(value)[1:-1],", "value,",
     ["tests/test_security.py::test_list_masks_every_form_of_a_secret_a_failing_server_prints",
      "tests/test_security.py::test_an_error_body_quoting_a_secret_reaches_the_model_masked"],
     "a secret is masked in its JSON-escaped form"),
    ("mask-no-url-form", "mcpzip/base/log.py",
     'percent = "".join(chr(b) if chr(b) in _UNRESERVED else f"%{b:02X}" for b in value.encode("utf-8"))',
     "percent = value",
     ["tests/test_security.py::test_list_masks_every_form_of_a_secret_a_failing_server_prints"],
     "a secret is masked in its URL-encoded form"),
    ("mask-no-split-pieces", "mcpzip/base/log.py", "MIN_FRAGMENT = 8", "MIN_FRAGMENT = 10**6",
     ["tests/test_security.py::test_list_masks_every_form_of_a_secret_a_failing_server_prints"],
     "a secret split between two stderr lines is masked"),
    ("shown-unmasked", "mcpzip/base/log.py", "text = escape(redact(text, edges))", "text = escape(text)",
     ["tests/test_security.py", "tests/test_stdio_upstreams.py"],
     "text shown from elsewhere is masked before it is cut"),
    ("log-controls-raw", "mcpzip/base/log.py", "return text.translate(_CONTROL)", "return text",
     ["tests/test_security.py::test_upstream_text_cannot_forge_log_lines_or_drive_the_terminal"],
     "upstream text cannot forge log lines"),
    ("model-controls-raw", "mcpzip/base/log.py", "return text.translate(_SPACES)", "return text",
     ["tests/test_security.py::test_tool_names_outside_mcps_alphabet_are_refused_and_nothing_forges_a_search_line"],
     "no control character reaches the model's search lines"),
    # -- base/files.py: modes and atomic writes (docs/security.md "Files") ------------
    ("file-mode-late", "mcpzip/base/files.py", "os.fchmod(fd, mode)", "pass",
     ["tests/test_migrate.py", "tests/test_init.py", "tests/test_catalog_cache.py"],
     "a file is given its mode before the first byte is written"),
    ("cache-not-atomic", "mcpzip/knowledge/catalog.py", "write_atomic(path, data, 0o644, dir_mode=CACHE_DIR_MODE)",
     'open(path, "wb").write(data)',
     ["tests/test_catalog_cache.py", "tests/test_stdio_lifecycle.py::test_stale_cache_temporaries_are_removed_at_the_next_start"],
     "the tool cache is replaced atomically with mode 644"),
    # -- base/config.py -----------------------------------------------------------
    ("config-readable-silent", "mcpzip/base/config.py", "mode & (stat.S_IRGRP | stat.S_IROTH)", "mode & 0",
     ["tests/test_config.py"], "a config readable by others is warned about"),
    ("server-name-underscore", "mcpzip/base/config.py", 'or name.startswith("_") or name.endswith("_")', "",
     ["tests/test_security.py::test_server_names_with_an_underscore_at_either_end_are_refused", "tests/test_config.py"],
     "server names neither begin nor end with _"),
    ("passthrough-own-secret", "mcpzip/base/config.py", "if var in OWN_VARS or var.startswith(OWN_PREFIX):",
     "if False:", ["tests/test_stdio_env.py"], "env_passthrough never names mcpzip's own secrets"),
    # -- base/web.py: network (docs/security.md "Network") ---------------------------
    ("http-anywhere", "mcpzip/base/web.py", "return ipaddress.ip_address(host).is_loopback", "return True",
     ["tests/test_web_security.py", "tests/test_remote.py::test_plain_http_is_refused_for_remote_hosts"],
     "plain http only for loopback hosts"),
    ("two-way-urls", "mcpzip/base/web.py", "if _AUTHORITY_FORBIDDEN.intersection(_raw_authority(url)):", "if False:",
     ["tests/test_web_security.py::test_a_url_parsers_would_read_two_ways_is_refused"],
     "a URL parsers would read two ways is refused"),
    ("redirect-anywhere", "mcpzip/base/web.py", "if origin(absolute) != origin(resp.url):", "if False:",
     ["tests/test_web_security.py"], "no redirect to another origin"),
    ("referred-to-localhost", "mcpzip/base/web.py",
     "if is_loopback(target_host) and not is_loopback(referrer_host):", "if False:",
     ["tests/test_web_security.py", "tests/test_security.py::test_a_remote_servers_challenge_cannot_point_discovery_at_this_machine"],
     "a remote server never sends mcpzip to this machine"),
    ("verify-off", "mcpzip/base/web.py",
     'kwargs["verify"] = kwargs.get("verify") if isinstance(kwargs.get("verify"), str) else True',
     'kwargs["verify"] = kwargs.get("verify", True)',
     ["tests/test_tls.py::test_verification_cannot_be_turned_off"], "TLS verification cannot be turned off"),
    ("tls-1.0-allowed", "mcpzip/base/web.py", "context.minimum_version = ssl.TLSVersion.TLSv1_2", "pass",
     ["tests/test_tls.py::test_a_server_offering_only_tls_1_1_is_refused"], "TLS 1.2 or newer"),
    # -- upstream/auth: OAuth (docs/security.md "OAuth") ------------------------------
    ("pkce-plain", "mcpzip/upstream/auth/flow.py", '"code_challenge_method": "S256",',
     '"code_challenge_method": "plain",',
     ["tests/test_oauth.py::test_login_then_serve_with_refresh_then_logout"], "PKCE S256"),
    ("pkce-not-required", "mcpzip/upstream/auth/flow.py",
     'if not disc.legacy_fallback and (not isinstance(methods, list) or "S256" not in methods):', "if False:",
     ["tests/test_survivors.py", "tests/test_oauth.py"], "servers without S256 are refused"),
    ("state-unchecked", "mcpzip/upstream/auth/callback.py",
     "ours = bool(state) and hmac.compare_digest(state, owner._expected_state) and not owner._done.is_set()",
     "ours = not owner._done.is_set()",
     ["tests/test_oauth.py::test_callback_with_wrong_state_is_rejected_and_the_real_one_accepted"],
     "a forged callback (wrong state) is never exchanged"),
    ("iss-unchecked", "mcpzip/upstream/auth/flow.py", "if iss is not None and iss != disc.issuer:", "if False:",
     ["tests/test_survivors.py", "tests/test_oauth.py"], "iss on the callback must equal the issuer (RFC 9207)"),
    ("resource-unchecked", "mcpzip/upstream/auth/discovery.py", "if not resource_covers(named, server_url):",
     "if False:", ["tests/test_oauth.py::test_resource_mismatch_is_refused"],
     "a token meant for another resource is refused"),
    ("token-file-readable", "mcpzip/upstream/auth/store.py", "SECRET_MODE = 0o600", "SECRET_MODE = 0o644",
     ["tests/test_oauth.py::test_login_then_serve_with_refresh_then_logout"], "token files are 600"),
    ("sign-ins-unbounded", "mcpzip/upstream/auth/authorizer.py",
     "if self._background_flows >= MAX_BACKGROUND_FLOWS:", "if False:",
     ["tests/test_security.py::test_serve_stops_signing_in_by_itself_when_the_server_refuses_fresh_tokens"],
     "serve signs in by itself at most 3 times per server"),
    ("fresh-token-loop", "mcpzip/upstream/auth/authorizer.py",
     "if age < FRESH_TOKEN_SECONDS:", "if False:",
     ["tests/test_security.py::test_serve_stops_signing_in_by_itself_when_the_server_refuses_fresh_tokens"],
     "a fresh token refused again starts no new sign-in"),
    ("sign-in-unlocked", "mcpzip/upstream/auth/store.py", "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", "pass",
     ["tests/test_oauth.py::test_two_logins_at_once_share_one_sign_in"],
     "a file lock around each sign-in: two processes share one"),
    # -- upstream/transports: processes (docs/security.md "Upstream processes") -------
    ("env-everything", "mcpzip/upstream/transports/stdio.py",
     "env = {k: environ[k] for k in names if k in environ and k not in OWN_VARS and not k.startswith(OWN_PREFIX)}",
     "env = dict(environ)",
     ["tests/test_stdio_upstreams.py::test_upstream_environment_is_allowlist_plus_its_own", "tests/test_stdio_env.py"],
     "stdio upstreams get only the allowlist of mcpzip's environment"),
    ("no-process-group", "mcpzip/upstream/transports/stdio.py", 'kwargs["start_new_session"] = True', "pass",
     ["tests/test_stdio_upstreams.py", "tests/test_stdio_lifecycle.py"],
     "upstreams run in their own process group, which is terminated on shutdown"),
    ("watchdog-no-group", "mcpzip/upstream/transports/watchdog.py", "os.killpg(leader, sig)", "pass",
     ["tests/test_stdio_lifecycle.py::test_after_sigkill_nothing_mcpzip_started_survives"],
     "if mcpzip is killed, the watchdog stops its upstreams' process groups"),
    ("sse-endpoint-anywhere", "mcpzip/upstream/transports/sse.py",
     "if (a.scheme, a.netloc) != (b.scheme, b.netloc):", "if False:",
     ["tests/test_survivors.py::test_an_sse_endpoint_on_another_origin_is_never_posted_to", "tests/test_remote.py"],
     "the legacy SSE endpoint must be on the stream's own origin"),
    # -- knowledge/catalog.py ---------------------------------------------------------
    ("tool-names-unchecked", "mcpzip/knowledge/catalog.py",
     "if len(name) > MAX_TOOL_NAME or not TOOL_NAME_CHARS.issuperset(name):", "if False:",
     ["tests/test_security.py::test_tool_names_outside_mcps_alphabet_are_refused_and_nothing_forges_a_search_line"],
     "tool names outside MCP's alphabet are refused"),
    # -- downstream/resultstore.py (docs/security.md "Files", big results) -------------
    ("results-any-client", "mcpzip/downstream/resultstore.py", "if piece is not None and piece.owner == owner:",
     "if piece is not None:", ["tests/test_results.py"], "a client reads only its own results"),
    ("results-file-readable", "mcpzip/downstream/resultstore.py",
     "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)", "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)",
     ["tests/test_results.py::test_twenty_megabytes_are_kept_in_a_private_file_removed_at_exit"],
     "kept results are in 600 files"),
    ("results-guessable-ids", "mcpzip/downstream/resultstore.py", "key = secrets.token_urlsafe(16)",
     "key = str(len(self._pieces) + len(self._forgotten))",
     ["tests/test_results.py"], "result ids are 128 random bits"),
    # -- behaviours users rely on beyond security ---------------------------------------
    ("results-no-line-cut", "mcpzip/downstream/results.py", 'newline = data.rfind(b"\\n", start + room // 2, end)',
     "newline = -1", ["tests/test_results.py"], "a cut result ends at a line boundary"),
    ("era-no-common-version", "mcpzip/upstream/session.py",
     'self.legacy_offer = _common_legacy(supported, "server/discover")', "pass",
     ["tests/test_upstream_eras.py"], "an upstream sharing no protocol version is an error, not a fallback"),
    ("missing-arguments-sent", "mcpzip/downstream/metatools.py", "        if missing:\n", "        if False:\n",
     ["tests/test_cli.py::test_failures_exit_1_with_a_message", "tests/test_cli.py::test_errors_of_describe_and_call_start_like_every_commands"],
     "required arguments are checked before the upstream is called"),
    ("progress-token-unmapped", "mcpzip/upstream/session.py",
     'params = protocol.with_meta(params, {"progressToken": request_id})', "pass",
     ["tests/test_relay.py::test_progress_comes_back_under_the_clients_token"],
     "progress comes back under the client's token"),
    ("exact-name-bonus-zero", "mcpzip/knowledge/search.py", "EXACT_NAME = 0.3", "EXACT_NAME = 0.0",
     ["tests/test_search.py"], "a tool named exactly as asked ranks first"),
]

# Survivors of the last full run, each with what was done about it.
SURVIVORS: dict[str, str] = {
    "mask-first-only": "test_survivors.py::test_every_occurrence_inside_a_line_and_a_secret_within_another_are_masked "
    "(the stderr edge masking hid it: the second occurrence ended the line)",
    "mask-shortest-first": "the same test (a secret inside another, mid-line)",
    "mask-no-url-form": "the first version of this mutation left an equivalent form; the one here is killed",
    "pkce-not-required": "test_survivors.py::test_an_authorization_server_without_s256_is_refused_before_the_browser_opens",
    "iss-unchecked": "test_survivors.py::test_a_callback_from_another_issuer_is_refused (oauth_fake gained callback_iss)",
    "sse-endpoint-anywhere": "test_survivors.py::test_an_sse_endpoint_on_another_origin_is_never_posted_to",
    "sign-ins-unbounded": "reason: the third sign-in comes only after 30 + 60 s of backoff, too long for a test; "
    "the loop users meet (a fresh token refused again) is stopped first, and fresh-token-loop is killed",
    "watchdog-no-group": "reason: the watchdog also signals every process of the family it tracks by pid, which "
    "covers the test's children; the group signal adds only members started after its last look, which no test "
    "can time without a race",
    "verify-off": "killed when its test runs; left out when test_tls.py::test_verification_cannot_be_turned_off "
    "fails unmutated, as it does after ::test_a_server_offering_only_tls_1_1_is_refused in one session (urllib3 "
    "loads that test's verify= CA into web's shared TLS context)",
    "tls-1.0-allowed": "equivalent on Python >= 3.10, whose ssl default minimum is already TLS 1.2; the line "
    "matters on 3.9, where test_tls cannot run (its peer needs the SDK)",
}


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return [line for line in out.stdout.splitlines() if line and (ROOT / line).is_file()]


def copy_tree(target: Path) -> None:
    for name in tracked_files():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)


def run_tests(tree: Path, targets: list[str], env: dict, skip: frozenset = frozenset(),
              first_failure: bool = True) -> tuple[bool, float, str]:  # fmt: skip
    """(passed, seconds, the output) for *targets* run in *tree*, without the tests in *skip*."""
    started = time.monotonic()
    argv = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", f"--timeout={PER_TEST_TIMEOUT}",
            *(["-x"] if first_failure else []), *targets, *[f"--deselect={node}" for node in sorted(skip)]]  # fmt: skip
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode == 5:  # nothing ran: every target fails unmutated
        return None, time.monotonic() - started, done.stdout + done.stderr  # type: ignore[return-value]
    return done.returncode == 0, time.monotonic() - started, done.stdout + done.stderr


def failing(output: str) -> frozenset:
    """The node ids pytest's ``-rf`` summary lists as failed."""
    return frozenset(line.split()[1] for line in output.splitlines() if line.startswith("FAILED "))


def tail(output: str, lines: int = 3) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def mutate(tree: Path, mutation: tuple, env: dict, skip: frozenset) -> tuple[str, float, str]:
    """Apply one mutation in *tree*, run its tests, restore the file: ("killed"|"survived"|"not applied", s, tail)."""
    name, file, old, new, targets, _ = mutation
    path = tree / file
    original = path.read_text(encoding="utf-8")
    if original.count(old) != 1:
        return "not applied", 0.0, f"{file}: the line occurs {original.count(old)} times"
    try:
        path.write_text(original.replace(old, new), encoding="utf-8")
        passed, seconds, output = run_tests(tree, targets, env, skip)
    finally:
        path.write_text(original, encoding="utf-8")
    if passed is None:
        return "not run", seconds, "its tests fail on the unmutated tree"
    return ("survived" if passed else "killed"), seconds, tail(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated mutation names")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of every target unmutated")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m[0] in args.only.split(",")]
    if args.list:
        for name, file, *_, promise in chosen:
            print(f"{name:<26} {file:<40} {promise}")
        return 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPZIP_", "GEMINI_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    results = []
    with tempfile.TemporaryDirectory(prefix="mcpzip-mutate-") as tmp:
        tree = Path(tmp) / "tree"
        copy_tree(tree)
        skip: frozenset = frozenset()
        if not args.no_baseline:
            # Tests failing on the unmutated tree (a change under way on main,
            # say) are left out of every run: only a mutation may fail a test.
            targets = sorted({t for m in chosen for t in m[4]})
            _, seconds, output = run_tests(tree, targets, env, first_failure=False)
            skip = failing(output)
            print(f"baseline: {seconds:.0f} s; failing unmutated, left out: {', '.join(sorted(skip)) or 'none'}",
                  flush=True)  # fmt: skip
        for mutation in chosen:
            outcome, seconds, last = mutate(tree, mutation, env, skip)
            results.append((mutation, outcome))
            print(f"{outcome:<12} {mutation[0]:<26} {seconds:5.0f} s  {mutation[5]}", flush=True)
            if outcome != "killed":
                print("             " + last.replace("\n", "\n             "))
    applied = [r for r in results if r[1] in ("killed", "survived")]
    killed = [r for r in applied if r[1] == "killed"]
    modules = sorted({m[1] for m, _ in applied})
    print(f"\nscore: {len(killed)}/{len(applied)} killed ({len(modules)} modules)")
    for mutation, outcome in results:
        if outcome != "killed":
            print(f"  {outcome}: {mutation[0]}: {SURVIVORS.get(mutation[0], 'no test or reason yet')}")
    return 0 if len(killed) == len(applied) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
