"""Stopping is safe: SIGTERM/SIGINT on `crawl` and `worker`, a second signal, a parent's death.

Real processes, a real Redis, real HTTP from the loopback test web (with a per-response delay,
so that a crawl is stopped mid-way). Processes are found through /proc.

No bound on wall time: on a loaded machine (CI, -n 2) a stop's work takes seconds more. A
graceful stop runs with a grace no load exhausts, and shows it was graceful by what it wrote
(nothing forced, the leases returned, the index consistent); a forced stop must not wait for
responses that would take an hour; how long stopping may take is the grace and the hard exit,
which the logs show were taken (or not). STOP_WAIT is only there so that a hang fails.
"""

from __future__ import annotations

import doctest
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import crawling
import pytest
import redis

from crawler.frontier import CrawlConfig, Frontier
from crawler.redis_server import sweep_stale_dirs
from crawler.runner import submit
from crawler.testweb import WebServer, build_test_web
from pipelines.report import load_links, load_pages

ROOT = Path(__file__).resolve().parent.parent
TMP = Path(tempfile.gettempdir())
STOP_WAIT = 120  # seconds a stop may take before the test fails: far past any load's
GRACE = "600"  # --stop-grace of the graceful stops: past STOP_WAIT, so it never forces them
NEVER = 3600  # seconds a response takes when it is not to come during the test


@pytest.fixture(scope="module")
def web():
    return build_test_web()


# -- processes and sockets, from /proc ------------------------------------------------------
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            children.setdefault(st[1], []).append(int(entry))
    found: set[int] = set()
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.add(p)
        todo += children.get(p, [])
    return found


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (st := _stat(p)) is not None and st[0] not in "ZX"}


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def listening_ports(pid: int) -> set[int]:
    """TCP ports that process ``pid`` listens on (its socket inodes in /proc/net/tcp{,6})."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def redis_dirs(pid: int, tmp: Path = TMP) -> list[Path]:
    """The private Redis directories of `crawl` process ``pid`` (see RedisServer)."""
    return sorted(tmp.glob(f"linkcrawl-redis-{pid}-*"))


# -- crawls ---------------------------------------------------------------------------------
def start_crawl(server, web, out: Path, *extra: str, session: bool = False,
                tmpdir: Path | None = None) -> subprocess.Popen:  # fmt: skip
    env = crawling.crawl_env(server.proxy_url)
    if tmpdir is not None:  # its private Redis directory there
        env["TMPDIR"] = str(tmpdir)
    return crawling.start_crawl(web.seeds, out, "--workers", "2", "--delay", "0", "--crawl-id",
                                "stop-t", "--allow-private", *extra, env=env,
                                start_new_session=session)  # fmt: skip


def wait_requests(server, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(server.requests()) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"only {len(server.requests())} requests"
        time.sleep(0.05)


def wait_tree(proc: subprocess.Popen, n: int, timeout: float = 30) -> set[int]:
    """The crawl's process tree once it has ``n`` processes (workers and valkey-server)."""
    deadline = time.monotonic() + timeout
    while len(tree := descendants(proc.pid)) < n:
        assert time.monotonic() < deadline, tree
        time.sleep(0.05)
    return tree


def wait_stopped(proc: subprocess.Popen) -> tuple[str, str]:
    """Its output once it has exited; a test failure (and the process killed) past STOP_WAIT."""
    try:
        return proc.communicate(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"not stopped after {STOP_WAIT} s\n{out[-2000:]}\n{err[-2000:]}")


def wait_logged(out: Path, text: str, n: int, proc: subprocess.Popen) -> None:
    """Until the workers' logs in ``out`` hold ``text`` ``n`` times."""
    deadline = time.monotonic() + STOP_WAIT
    while crawl_logs(out).count(text) < n:
        assert proc.poll() is None and time.monotonic() < deadline, crawl_logs(out)[-3000:]
        time.sleep(0.05)


def stderr_lines(proc: subprocess.Popen, text: str) -> str:
    """What ``proc`` wrote to its stderr pipe up to a line holding ``text`` (read unbuffered:
    communicate() reads the rest)."""
    fd, seen = proc.stderr.fileno(), b""
    deadline = time.monotonic() + STOP_WAIT
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, seen.decode()[-3000:]
        if select.select([fd], [], [], min(left, 1.0))[0]:
            seen += os.read(fd, 65536)
    return seen.decode()


def crawl_logs(out: Path) -> str:
    return "".join(p.read_text() for p in (out / "logs").glob("*.log"))


def assert_stopped_gracefully(out: Path) -> None:
    """Each worker of the crawl stopped once, and neither its grace nor its hard exit ran out."""
    logs = crawl_logs(out)
    assert logs.count("stopping (in-flight pages get") == 2  # once per worker
    assert "forcing the stop" not in logs and "stop did not finish in time" not in logs, logs


def assert_index_consistent(out: Path, total_pages: int) -> None:
    pages = load_pages(out).to_pylist()
    links = load_links(out).to_pylist()
    assert 0 < len(pages) < total_pages, "stopped mid-crawl, with pages written"
    per_source = Counter(r["source_url"] for r in links)
    assert sum(p["out_links"] for p in pages) > 0
    for page in pages:
        # A page row is written with all its links, or not at all.
        assert per_source[page["url"]] == page["out_links"], page["url"]
    assert set(per_source) <= {p["url"] for p in pages}


def test_sigterm_mid_crawl_stops_cleanly(web, tmp_path):
    out = tmp_path / "index"
    with WebServer(web.site, delay=0.3) as server:
        proc = start_crawl(server, web, out, "--stop-grace", GRACE)
        tree = wait_tree(proc, 3)
        wait_requests(server, 40, proc)
        assert len(redis_dirs(proc.pid)) == 1, "the private Redis directory, while it runs"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = wait_stopped(proc)
    assert proc.returncode == 143, stderr
    assert_stopped_gracefully(out)
    assert "(interrupted by SIGTERM)" in stdout and "published gen-" in stdout, stdout
    assert not wait_gone(tree, STOP_WAIT), "a worker or the private Redis outlived the crawl"
    assert redis_dirs(proc.pid) == []
    assert_index_consistent(out, len(web.reachable))


def test_sigint_to_the_process_group_as_ctrl_c(web, tmp_path):
    """A terminal's Ctrl-C reaches every process of the group: workers get it directly and
    from the parent, and still stop once, gracefully."""
    out = tmp_path / "index"
    with WebServer(web.site, delay=0.3) as server:
        proc = start_crawl(server, web, out, "--stop-grace", GRACE, session=True)
        tree = wait_tree(proc, 3)
        wait_requests(server, 40, proc)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = wait_stopped(proc)
    assert proc.returncode == 130, stderr
    assert "(interrupted by SIGINT)" in stdout and "forced" not in stderr
    assert not wait_gone(tree, STOP_WAIT)
    assert redis_dirs(proc.pid) == []
    assert_index_consistent(out, len(web.reachable))
    assert_stopped_gracefully(out)


def test_second_signal_forces(web, tmp_path):
    out = tmp_path / "index"
    # Responses take an hour, and so does the grace: a stop that is not forced would wait.
    with WebServer(web.site, delay=NEVER) as server:
        proc = start_crawl(server, web, out, "--stop-grace", str(NEVER))
        tree = wait_tree(proc, 3)
        wait_requests(server, 2, proc)
        proc.send_signal(signal.SIGTERM)
        wait_logged(out, "stopping (in-flight pages get", 2, proc)  # the first one was heard
        assert proc.poll() is None, "still waiting for the pages in flight"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = wait_stopped(proc)
    assert proc.returncode == 143, stderr
    assert "forced" in stderr and "(interrupted by SIGTERM)" in stdout
    assert not wait_gone(tree, STOP_WAIT)
    assert redis_dirs(proc.pid) == []


def test_parent_killed_workers_exit(web, tmp_path):
    out = tmp_path / "index"
    # A temporary directory of its own: any other process starting a RedisServer (a test run
    # beside this one) would sweep the stale directory before this test looks at it.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with WebServer(web.site, delay=0.3) as server:
        proc = start_crawl(server, web, out, tmpdir=tmp)
        tree = wait_tree(proc, 3)
        wait_requests(server, 40, proc)
        proc.kill()
        proc.communicate(timeout=STOP_WAIT)
        assert not wait_gone(tree, STOP_WAIT), "workers or valkey-server outlived a killed parent"
    # Its private Redis directory could not be removed by it: the next server sweeps it.
    left = redis_dirs(proc.pid, tmp)
    assert len(left) == 1
    assert left[0] in sweep_stale_dirs(tmp)
    assert not left[0].exists()


# -- a cluster worker -----------------------------------------------------------------------
def run_worker_and_stop(web, redis_url: str, tmp: Path, name: str, *extra: str,
                        slow_down=False, second_after=False,
                        heard_when="stopping (in-flight pages get"):  # fmt: skip
    """`linkcrawl worker` SIGTERMed mid-crawl; what was seen before and after.

    ``slow_down``: before the signal, responses start taking an hour, so that pages are in
    flight past the worker's grace and its stop is forced. ``second_after``: send a second
    SIGTERM once the first was heard (its stderr holds ``heard_when``).
    """
    client = redis.Redis.from_url(redis_url)
    crawl_id, worker_id = f"stop-{name}", f"stop-{name}-w1"
    frontier = Frontier(client, crawl_id)
    frontier.delete()
    config = CrawlConfig(crawl_id=crawl_id, seeds=list(web.seeds), host_delay=0.0,
                         host_concurrency=2, allow_private=True)  # fmt: skip
    submit(frontier, config)
    home, tmpdir = tmp / "home", tmp / "tmpdir"
    home.mkdir()
    tmpdir.mkdir()
    with WebServer(web.site, delay=0.3) as server:
        # Where Scrapy would keep state (remote-control job files: platformdirs).
        env = crawling.crawl_env(server.proxy_url, HOME=str(home), TMPDIR=str(tmpdir),
                                 XDG_STATE_HOME=str(home / "state"))  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler.cli", "worker", "--redis", redis_url,
             "--crawl-id", crawl_id, "--out", str(tmp / "out"), "--worker-id", worker_id,
             "--stop-hard-exit", str(STOP_WAIT), *extra],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_requests(server, 40, proc)
        if slow_down:
            server.set_delay(NEVER)
            seen = len(server.requests())
            wait_requests(server, seen + 2, proc)  # sent, and not to be answered in time
        ports = listening_ports(proc.pid)
        own_ports = listening_ports(os.getpid())
        server_port = server.port
        inflight = frontier.counts()["inflight"]
        proc.send_signal(signal.SIGTERM)
        if second_after:
            heard = stderr_lines(proc, heard_when)
            assert proc.poll() is None, "still waiting for the pages in flight"
            proc.send_signal(signal.SIGTERM)
        else:
            heard = ""
        _, stderr = wait_stopped(proc)
        stderr = heard + stderr
    owners = [v.decode() for v in client.hvals(frontier.owner)]
    leases = client.scard(frontier.key(f"lease:{worker_id}"))
    result = dict(proc=proc, stderr=stderr, ports=ports, own_ports=own_ports,
                  server_port=server_port, inflight=inflight, owners=owners, leases=leases,
                  counts=frontier.counts(), out=tmp / "out", home=home, tmpdir=tmpdir)  # fmt: skip
    frontier.delete()
    client.close()
    return result


@pytest.fixture(scope="module")
def stopped_worker(web, redis_server, tmp_path_factory):
    return run_worker_and_stop(web, redis_server.url, tmp_path_factory.mktemp("w"), "worker",
                               "--stop-grace", GRACE)  # fmt: skip


def test_worker_sigterm_stops_gracefully(stopped_worker):
    w = stopped_worker
    assert w["proc"].returncode == 143, w["stderr"][-2000:]
    assert w["stderr"].count("stopping (in-flight pages get 600 s)") == 1, w["stderr"][-2000:]
    assert "forcing the stop" not in w["stderr"] and "did not finish in time" not in w["stderr"]


def test_worker_sigterm_leaves_no_lease(stopped_worker):
    w = stopped_worker
    assert w["inflight"] > 0, "it held leases when signalled"
    assert w["owners"] == [] and w["leases"] == 0
    assert w["counts"]["inflight"] == 0
    # What it fetched is on disk and acked: the counter agrees with the files.
    pages = load_pages(w["out"])
    assert w["counts"]["pages_written"] == pages.num_rows > 0


@pytest.mark.parametrize("how", ["grace", "second-signal"])
def test_worker_forces_its_stop(web, redis_server, tmp_path, how):
    """Pages still in flight past --stop-grace, or a second signal: what is buffered is
    written and acked, the rest goes back to the frontier, and the worker exits, without
    waiting for them."""
    grace = "1" if how == "grace" else str(NEVER)
    w = run_worker_and_stop(web, redis_server.url, tmp_path, how, "--stop-grace", grace,
                            slow_down=True, second_after=how == "second-signal")  # fmt: skip
    assert w["proc"].returncode == 143, w["stderr"][-2000:]
    assert f"stopping (in-flight pages get {grace} s)" in w["stderr"], w["stderr"][-2000:]
    assert "forcing the stop" in w["stderr"] and "did not finish in time" not in w["stderr"]
    assert w["owners"] == [] and w["leases"] == 0
    assert w["counts"].get("requeued", 0) > 0, "the pages in flight went back"
    assert w["counts"]["pages_written"] == load_pages(w["out"]).num_rows > 0


def test_worker_writes_what_it_holds_when_its_stop_begins(web, redis_server, tmp_path):
    """The pages buffered when the signal comes are written and acked at once, with pages
    still in flight and an hour of grace left: a stop that runs past its grace and hard exit
    (at load 10+) used to exit with them unwritten (fetched again once its leases expired)."""
    w = run_worker_and_stop(web, redis_server.url, tmp_path, "early", "--stop-grace", str(NEVER),
                            slow_down=True, second_after=True,
                            heard_when="buffered pages written")  # fmt: skip
    early = re.search(r"stopping: (\d+) buffered pages written", w["stderr"])
    assert early and int(early[1]) > 0, w["stderr"][-2000:]
    assert w["stderr"].index(early[0]) < w["stderr"].index("forcing the stop")
    assert w["counts"]["pages_written"] == load_pages(w["out"]).num_rows > 0


def test_worker_listens_on_no_port(stopped_worker):
    w = stopped_worker
    assert w["server_port"] in w["own_ports"], "the check sees a listening socket"
    assert w["ports"] == set()
    # Nor did it leave state (Scrapy's remote-control job files) in its home, or any file in
    # its temporary directory.
    assert [p for p in w["home"].rglob("*") if p.is_file()] == []
    assert list(w["tmpdir"].iterdir()) == []


# -- crawl ids ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["../escape", "nov/2026", "a..b"])
def test_unsafe_crawl_id_refused(tmp_path, bad):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("http://a.test/\n")
    out = tmp_path / "sub" / "out"
    for cmd in (["crawl", str(seeds), "--out", str(out)],
                ["submit", str(seeds), "--redis", "redis://127.0.0.1:1/0"],
                ["worker", "--redis", "redis://127.0.0.1:1/0", "--out", str(out)]):  # fmt: skip
        res = subprocess.run(
            [sys.executable, "-m", "crawler.cli", *cmd, "--crawl-id", bad],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert res.returncode == 2, (cmd, res.stderr)
        assert res.stderr.startswith("linkcrawl: error: invalid crawl id"), res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [seeds]


def test_docstring_examples():
    import crawler.runner
    import crawler.stopping

    for module in (crawler.runner, crawler.stopping):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
