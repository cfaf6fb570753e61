"""The deployment files parse and agree with the command line they run."""

from __future__ import annotations

import configparser
from pathlib import Path

import yaml

from crawler.cli import build_parser

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def parses(args: list[str]) -> None:
    build_parser().parse_args(args)  # raises SystemExit on an unknown option


def test_compose_runs_redis_with_aof_and_real_worker_commands():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "--appendonly" in services["redis"]["command"]
    assert (
        services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1]
        == "yes"
    )
    parses(services["worker"]["command"])
    parses(services["submit"]["command"])


def test_kubernetes_manifests():
    redis_docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "redis.yaml").read_text()))
    kinds = {d["kind"] for d in redis_docs}
    assert kinds == {"Service", "StatefulSet"}
    (sts,) = [d for d in redis_docs if d["kind"] == "StatefulSet"]
    assert "--appendonly" in sts["spec"]["template"]["spec"]["containers"][0]["args"]
    (deploy,) = yaml.safe_load_all((DEPLOY / "k8s" / "workers.yaml").read_text())
    assert deploy["kind"] == "Deployment" and deploy["spec"]["replicas"] >= 1
    parses(deploy["spec"]["template"]["spec"]["containers"][0]["args"])


def test_systemd_unit_runs_a_worker():
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str
    unit.read(DEPLOY / "systemd" / "linkcrawl-worker@.service")
    exec_start = unit["Service"]["ExecStart"].split()
    assert exec_start[0].endswith("linkcrawl")
    parses(
        [
            a.replace("${REDIS_URL}", "redis://r:6379/0").replace("${OUT}", "/x")
            for a in exec_start[1:]
        ]
    )


def test_compose_bind_mounts_exist_and_hold_the_seeds():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source in named:
                continue
            assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not in deploy/"
            for arg in service.get("command", []):
                if arg.startswith(target + "/"):
                    assert (DEPLOY / source / arg[len(target) + 1 :]).is_file(), arg


def test_monitor_runs_daily_under_systemd():
    unit = configparser.ConfigParser(interpolation=None)
    unit.optionxform = str
    unit.read(DEPLOY / "systemd" / "linkcrawl-monitor.service")
    assert unit["Service"]["Type"] == "oneshot"
    exec_start = unit["Service"]["ExecStart"].split()
    assert exec_start[0].endswith("linkcrawl") and exec_start[1] == "monitor"
    values = {"${TARGET}": "example.test", "${INDEX}": "/x", "${WEBHOOK}": "https://h.test/"}
    args = build_parser().parse_args([values.get(a, a) for a in exec_start[1:]])
    assert (args.target, args.index, args.webhook) == ("example.test", "/x", "https://h.test/")
    timer = configparser.ConfigParser(interpolation=None)
    timer.optionxform = str
    timer.read(DEPLOY / "systemd" / "linkcrawl-monitor.timer")
    assert timer["Timer"]["OnCalendar"] == "daily"
    assert timer["Timer"]["Unit"] == "linkcrawl-monitor.service"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_monitor_cronjob_runs_daily():
    (job,) = yaml.safe_load_all((DEPLOY / "k8s" / "monitor-cronjob.yaml").read_text())
    assert job["kind"] == "CronJob" and job["apiVersion"] == "batch/v1"
    minute, hour, *every = job["spec"]["schedule"].split()
    assert minute.isdigit() and hour.isdigit() and every == ["*", "*", "*"]  # once a day
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.func.__name__ == "cmd_monitor"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert args.index in mounts  # the index is a directory on the mounted volume
