"""A stand-in for the user's browser during OAuth tests (used through ``$BROWSER``).

    browser.py URL

Fetches the authorization URL and follows the redirects, as a browser would
after an automatic approval, ending on mcpzip's callback page.  Environment:

* ``TEST_BROWSER_LOG``: a file to append one line per visit to
  (``open <url>`` then ``callback <status>`` for each callback reached).
* ``TEST_BROWSER_MODE=wrong-state``: before following, visit the callback
  with a forged ``state`` (and then the real redirect).
* ``TEST_BROWSER_MODE=refuse``: record the visit and do nothing else.
* ``TEST_BROWSER_MODE=slow``: wait ``TEST_BROWSER_DELAY`` seconds (a person
  reading the page), then follow.
* ``TEST_BROWSER_MODE=odd-state``: before following, visit the callback with a
  non-ASCII ``state`` (and then the real redirect).
* ``TEST_BROWSER_MODE=preconnect``: before following, open a connection to the
  callback and send nothing on it (a browser's speculative preconnect), kept
  open until the end.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None


def log(line: str) -> None:
    path = os.environ.get("TEST_BROWSER_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def fetch(url: str) -> tuple[int, str | None]:
    """GET *url* without following; (status, Location)."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=30) as response:
            return response.status, response.headers.get("Location")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location")
    except OSError as e:  # no answer at all (the page crashed, or never came)
        return type(e).__name__, None


def main() -> int:
    url = sys.argv[1]
    mode = os.environ.get("TEST_BROWSER_MODE", "")
    log(f"open {url}")
    if mode == "refuse":
        return 0
    if mode == "slow":
        import time

        time.sleep(float(os.environ.get("TEST_BROWSER_DELAY", "3")))
    redirect_uri = parse_qs(urlsplit(url).query).get("redirect_uri", [""])[0]
    if mode == "wrong-state" and redirect_uri:
        status, _ = fetch(redirect_uri + "?" + urlencode({"code": "forged", "state": "not-the-state"}))
        log(f"callback {status} forged")
    if mode == "odd-state" and redirect_uri:
        status, _ = fetch(redirect_uri + "?" + urlencode({"code": "forged", "state": "\u00e9t\u00e9"}))
        log(f"callback {status} odd-state")
    idle = None
    if mode == "preconnect" and redirect_uri:
        parts = urlsplit(redirect_uri)
        idle = socket.create_connection((parts.hostname, parts.port), timeout=30)
        log("preconnect")
    for _ in range(10):
        status, location = fetch(url)
        if location is None:
            break
        url = urllib.parse.urljoin(url, location)
        if redirect_uri and url.startswith(redirect_uri):
            status, _ = fetch(url)
            log(f"callback {status}")
            break
    if idle is not None:
        idle.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
