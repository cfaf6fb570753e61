"""`linkcrawl demo`: crawl a built-in multi-host web served on loopback, then summarize.

Offline and loopback-only: the sample web is served by an in-process server that the worker
processes reach as their HTTP(S) proxy, so no name is resolved and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from crawler.frontier import CrawlConfig
from crawler.runner import UsageError, check_out_dir, new_crawl_id, run_crawl
from crawler.stopping import exit_status
from crawler.testweb import WebServer, build_demo_web
from pipelines.index.compact import compact
from pipelines.report import backlink_summary, load_links, most_linked_host
from pipelines.urls import normalize_url


def loopback_proxy_env(proxy_url: str) -> dict[str, str]:
    """The environment for workers whose every request goes to the loopback test server."""
    env = dict(os.environ)
    for name in ("no_proxy", "NO_PROXY"):
        env.pop(name, None)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[name] = proxy_url
    env["LINKCRAWL_DNS_SERVER"] = "none"  # no DNS query leaves: the proxy has every host
    return env


MANIFEST = ".linkcrawl-demo"  # the files a finished demo wrote, one relative path a line


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()} - {MANIFEST}


def _record(out_dir: Path) -> None:
    """Write the manifest: every file now under ``out_dir`` is the demo's."""
    (out_dir / MANIFEST).write_text("".join(f"{f}\n" for f in sorted(_files(out_dir))))


def demo_owns(out_dir: Path) -> bool:
    """Whether every file under ``out_dir`` is one a previous demo wrote there (its manifest
    lists it): only then may the demo replace the directory without ``--force``."""
    manifest = out_dir / MANIFEST
    if not manifest.is_file():
        return False
    try:
        written = set(manifest.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return False
    return _files(out_dir) <= written


def prepare_out(out_dir: Path, force: bool = False) -> None:
    """Make ``out_dir`` ready for a demo: absent or empty is used as is; a previous demo's
    index is replaced, so the summary is of this run alone; anything else is refused unless
    ``force`` (the user says it may go): the demo never deletes data it did not write."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (force or demo_owns(out_dir)):
            raise UsageError(
                f"--out {out_dir}: the directory holds files the demo did not write;"
                " choose another --out, or pass --force to replace it"
            )
        shutil.rmtree(out_dir)
    check_out_dir(out_dir)


def run_demo(
    out: str = "demo-index", workers: int | None = None, verbose: int = 0, force: bool = False
) -> int:
    web = build_demo_web()
    out_dir = Path(out)
    prepare_out(out_dir, force)
    print(f"Serving a sample web of {len(web.hosts)} hosts and {len(web.pages)} URLs on loopback")
    seeds = [u for u in (normalize_url(s) for s in web.seeds) if u]
    with WebServer(web.site) as server:
        print(f"Crawling {len(seeds)} seed sites into {out_dir}/ ...")
        # No allow_private: the hosts are unresolvable names the proxy serves, and the proxy's
        # own loopback address is connectable; the SSRF guard stays on, as for any proxy user.
        config = CrawlConfig(crawl_id=new_crawl_id(), seeds=seeds, host_delay=0.0,
                             host_concurrency=4)  # fmt: skip
        summary = run_crawl(
            config,
            out_dir,
            workers=workers,
            log_level={0: "WARNING", 1: "INFO"}.get(verbose, "DEBUG"),
            env=loopback_proxy_env(server.proxy_url),
        )
    _record(out_dir)
    print(summary.format())
    if summary.interrupted:
        return exit_status(summary.interrupted)
    print(compact(out_dir, crawl=config.crawl_id).format())
    _record(out_dir)
    links = load_links(out_dir)
    # A crawled host: its backlinks come from every kind of template and placement.
    host = most_linked_host(links, among=set(links["source_host"].to_pylist()))
    if host is None:
        print("No external links were found.")
        return 1
    print()
    print(backlink_summary(links, host).format())
    print()
    print(f"The index is in {out_dir}/ (Parquet). Try: linkcrawl backlinks {host} -i {out_dir}")
    return 0 if summary.worker_failures == 0 else 1
