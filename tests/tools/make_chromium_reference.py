"""Make the Chromium link reference for the Zyte pages (tests/data/chromium-links.json.gz).

For each page of ``tests/data/zyte-article-extraction-benchmark`` (and each hand-written case
of ``tests/data/link-cases/cases.json``, under ``case:<name>``), headless Chromium loads the
page *at its original URL* with JavaScript off and no network: every request is paused by the
DevTools ``Fetch`` domain; the page's own URL is answered with the bytes from disk, everything
else (images, CSS, frames, ...) fails. Relative links and ``<base href>`` therefore resolve
exactly as they did on the live page. Then, for each element of ``document.links`` (every
``<a href>`` and ``<area href>``, in tree order), it records:

- ``raw``: the href attribute; ``href``: the browser's resolution (``a.href``, whose query is
  encoded in the page's encoding), null when it fails (``new URL(raw, document.baseURI)``
  throws; ``a.href`` would give back the raw string);
- ``text``: ``innerText`` (rendered text: no ``display:none`` content, block breaks as
  newlines) with the page's CSS turned off (UA styles only), ``text_styled``: with the page's
  inline CSS (``<style>``, ``style=``; external sheets are not fetched);
- ``alts``: the alt texts of the ``<img>`` inside; ``alt``: an area's alt;
- ``rel``: ``[...relList]``, the browser's own split of rel; ``tag``.

Usage (needs Debian's ``chromium`` and ``websocket-client``; takes a few minutes)::

    python tests/tools/make_chromium_reference.py [--chromium /usr/bin/chromium]

The tests read the JSON only: they need no browser.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket  # websocket-client

ROOT = Path(__file__).resolve().parents[2]
ZYTE = ROOT / "tests" / "data" / "zyte-article-extraction-benchmark"
CASES = ROOT / "tests" / "data" / "link-cases" / "cases.json"
OUT = ROOT / "tests" / "data" / "chromium-links.json.gz"
# What the fake server says: the pages are UTF-8 (the dataset's README), and linkcrawl is
# compared with the same header.
CONTENT_TYPE = "text/html; charset=utf-8"

COLLECT = r"""
(() => {
  const links = [...document.links];
  const out = links.map(a => {
    let href = null;
    // a.href is the resolution (its query in the page's encoding), or the raw attribute
    // when that fails: new URL() (UTF-8 always) tells which.
    try { new URL(a.getAttribute('href'), document.baseURI); href = a.href; } catch (e) {}
    return {
      tag: a.localName,
      raw: a.getAttribute('href'),
      href: href,
      text_styled: a.innerText,
      alts: [...a.querySelectorAll('img')].map(i => i.getAttribute('alt')),
      alt: a.localName === 'area' ? a.getAttribute('alt') : null,
      rel: [...a.relList],
    };
  });
  // The text again without the page's own CSS (<style> blocks and style attributes; external
  // sheets never loaded): what the page says, not how its theme dresses it (text-transform,
  // display:none of a visually-hidden label, inline-block layouts).
  for (const sheet of document.styleSheets) sheet.disabled = true;
  for (const el of document.querySelectorAll('[style]')) el.removeAttribute('style');
  links.forEach((a, i) => { out[i].text = a.innerText; });
  return {url: document.URL, base: document.baseURI, links: out};
})()
"""


class CDP:
    """A minimal Chrome DevTools Protocol client on one page target."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def post(self, method: str, **params: object) -> int:
        """Send a command without waiting for its answer."""
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def send(self, method: str, **params: object) -> dict:
        msg_id = self.post(method, **params)
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def event(self) -> dict:
        if self.events:
            return self.events.pop(0)
        while True:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                return msg


def zyte_body(page_id: str) -> bytes:
    return gzip.decompress((ZYTE / "html" / f"{page_id}.html.gz").read_bytes())


def case_body(case: dict) -> bytes:
    """A hand-written case's bytes: its html in its encode_as encoding (default UTF-8)."""
    return case["html"].encode(case.get("encode_as", "utf-8"))


def load(cdp: CDP, url: str, body: bytes, content_type: str) -> dict:
    # Not send(): navigate answers only once the document request, paused below, is served.
    cdp.post("Page.navigate", url=url)
    served = False
    while True:
        ev = cdp.event()
        method = ev["method"]
        if method == "Fetch.requestPaused":
            params = ev["params"]
            req_url = params["request"]["url"]
            if (
                not served
                and params.get("resourceType") == "Document"
                and req_url == url.split("#")[0]
            ):
                served = True
                cdp.send(
                    "Fetch.fulfillRequest",
                    requestId=params["requestId"],
                    responseCode=200,
                    responseHeaders=[{"name": "Content-Type", "value": content_type}],
                    body=base64.b64encode(body).decode(),
                )
            else:
                cdp.send("Fetch.failRequest", requestId=params["requestId"], errorReason="Failed")
        elif method == "Page.loadEventFired" and served:
            break
    result = cdp.send("Runtime.evaluate", expression=COLLECT, returnByValue=True)
    return result["result"]["value"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--cases-only", action="store_true", help="redo the hand-written cases only")
    args = ap.parse_args()
    truth = json.loads((ZYTE / "ground-truth.json").read_text())
    profile = tempfile.mkdtemp(prefix="chromium-ref-")
    port = 9333
    proc = subprocess.Popen(
        [
            args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", f"--user-data-dir={profile}",
            # Belt and braces: nothing may reach the network even if a request slipped past
            # the Fetch interception.
            "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--remote-debugging-port={port}", "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
                    targets = json.load(r)
                page = next(t for t in targets if t["type"] == "page")
                break
            except Exception:
                time.sleep(0.2)
        else:
            raise SystemExit("chromium did not start")
        cdp = CDP(page["webSocketDebuggerUrl"])
        cdp.send("Page.enable")
        cdp.send("Emulation.setScriptExecutionDisabled", value=True)
        cdp.send("Fetch.enable", patterns=[{"urlPattern": "*"}])
        version = cdp.send("Runtime.evaluate", expression="navigator.userAgent")
        jobs = []
        if not args.cases_only:
            jobs = [
                (page_id, item["url"], zyte_body(page_id), CONTENT_TYPE)
                for page_id, item in sorted(truth.items())
            ]
        cases = json.loads(CASES.read_text())
        jobs += [
            (f"case:{name}", c["url"], case_body(c), c.get("content_type", CONTENT_TYPE))
            for name, c in sorted(cases.items())
        ]
        pages = {}
        if args.cases_only:  # keep the Zyte pages of the existing reference
            old = json.loads(gzip.decompress(Path(args.out).read_bytes()))
            pages = {k: v for k, v in old["pages"].items() if not k.startswith("case:")}
        for n, (page_id, url, body, content_type) in enumerate(jobs, 1):
            got = load(cdp, url, body, content_type)
            if got["url"] != url:
                raise SystemExit(f"{page_id}: the page navigated away to {got['url']}")
            pages[page_id] = {"url": url, "base": got["base"], "links": got["links"]}
            print(f"{n}/{len(jobs)} {len(pages[page_id]['links'])} links", file=sys.stderr)
        doc = {
            "browser": version["result"]["value"],
            "how": "tests/tools/make_chromium_reference.py: JavaScript off, no network, "
            f"page served at its own URL with Content-Type {CONTENT_TYPE!r} (a case: its "
            "content_type, its html encoded as its encode_as)",
            "pages": pages,
        }
        data = json.dumps(doc, ensure_ascii=False, sort_keys=True, indent=0).encode()
        Path(args.out).write_bytes(gzip.compress(data, 9, mtime=0))
        print(f"wrote {args.out}", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
