"""TLS to remote servers (issue: the system store, TLS 1.2 or newer), against an HTTPS MCP server on
127.0.0.1 whose certificate authority is made in the test.  ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` stand
in for the system's certificate store (OpenSSL reads its default paths from them).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading

import pytest

from conftest import PYTHON, ROOT, clean_env, run_cli, write_config
from remote_peer import Peer, make_ca

requests = pytest.importorskip("requests")

TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    paths = make_ca(tmp_path_factory.mktemp("ca"))
    if paths is None:
        pytest.skip("the openssl command is not installed")
    server = Peer("--tls", paths["cert"], paths["key"])
    yield server, paths
    server.stop()


def _env(**trust: str) -> dict:
    """mcpzip's environment with no trust setting but *trust*."""
    env = {k: v for k, v in clean_env().items() if k not in TRUST_VARIABLES}
    env.update(trust)
    return env


def _call(tmp_path, server: Peer, env: dict, *command: str):
    config = write_config(tmp_path, {"remote": {"type": "http", "url": server.url("/mcp")}})
    args = command or ("call", "remote__echo", '{"text": "over TLS"}')
    return run_cli(*args, "--config", str(config), env=env)


def test_trusted_through_the_system_store(tmp_path, tls_server):
    server, paths = tls_server
    result = _call(tmp_path, server, _env(SSL_CERT_FILE=paths["ca"]))
    assert result.returncode == 0, result.stderr
    assert "over TLS" in result.stdout


def test_trusted_through_a_system_certificate_directory(tmp_path, tls_server):
    server, paths = tls_server
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "company-ca.pem").write_bytes(open(paths["ca"], "rb").read())
    subprocess.run(["openssl", "rehash", str(directory)], check=True, capture_output=True, timeout=30)
    result = _call(tmp_path, server, _env(SSL_CERT_FILE=str(tmp_path / "none.pem"), SSL_CERT_DIR=str(directory)))
    assert result.returncode == 0, result.stderr


def test_requests_ca_bundle_keeps_working(tmp_path, tls_server):
    server, paths = tls_server
    result = _call(tmp_path, server, _env(REQUESTS_CA_BUNDLE=paths["ca"]))
    assert result.returncode == 0, result.stderr


def test_the_standard_library_trusts_the_system_store_without_truststore(tls_server):
    # truststore is optional: without it, the stdlib context reads the same system store.
    server, paths = tls_server
    code = (
        "import sys; sys.modules['truststore'] = None\n"
        "from mcpzip.base import web\n"
        f"print(web.session().get({server.url('/mcp')!r}).status_code)\n"
    )
    result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd=str(ROOT), timeout=60,
                            env=_env(SSL_CERT_FILE=paths["ca"]))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().isdigit()


def test_an_unknown_authority_is_refused_and_doctor_says_where_to_add_it(tmp_path, tls_server):
    server, _ = tls_server
    result = _call(tmp_path, server, _env())
    assert result.returncode == 1
    assert "TLS certificate verification failed" in result.stderr
    doctor = _call(tmp_path, server, _env(), "doctor", "--timeout", "10")
    assert "TLS certificate verification failed" in doctor.stdout
    assert "certificates tried:" in doctor.stdout
    assert "the bundle that ships with requests" in doctor.stdout
    assert "set SSL_CERT_FILE or REQUESTS_CA_BUNDLE" in doctor.stdout


def test_verification_cannot_be_turned_off(tls_server):
    from mcpzip.base import web

    server, _ = tls_server
    with pytest.raises(requests.exceptions.SSLError):
        web.session().get(server.url("/mcp"), verify=False)


def _old_tls_server(paths: dict):
    """A server that speaks only TLS 1.1 or older, or None where the local OpenSSL cannot serve one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.load_cert_chain(paths["cert"], paths["key"])
    except (ssl.SSLError, ValueError):
        return None
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed: the test is over
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except (ssl.SSLError, OSError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def _can_speak_old_tls(port: int) -> bool:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    try:
        client.set_ciphers("DEFAULT:@SECLEVEL=0")
        client.minimum_version = ssl.TLSVersion.TLSv1
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, client.wrap_socket(raw) as tls:
            return tls.version() in ("TLSv1", "TLSv1.1")
    except (ssl.SSLError, OSError, ValueError):
        return False


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TLS 1.0/1.1 on purpose
def test_a_server_offering_only_tls_1_1_is_refused(tls_server):
    from mcpzip.base import web

    _, paths = tls_server
    listener = _old_tls_server(paths)
    if listener is None:
        pytest.skip("the local OpenSSL cannot serve TLS 1.1")
    try:
        port = listener.getsockname()[1]
        if not _can_speak_old_tls(port):
            pytest.skip("the local OpenSSL cannot serve TLS 1.1")
        with pytest.raises(requests.exceptions.SSLError) as refused:
            web.session().get(f"https://127.0.0.1:{port}/", verify=paths["ca"])
        assert web.describe_error(refused.value) == "TLS handshake failed: the server offers only TLS older than 1.2"
    finally:
        listener.close()
