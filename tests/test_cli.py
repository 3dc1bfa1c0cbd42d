"""The `air-quality` command: `--help` everywhere, flags that are the configuration's options,
stdout that carries only results (also with two processes), one-line errors before the run."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from air_quality_stream import cli
from air_quality_stream.commands import commands
from air_quality_stream.commands.evaluate import EVALUATIONS
from air_quality_stream.flags import flags, parse_value
from air_quality_stream.preflight import check_postgres
from config.options import is_group
from config.tables import groups, resolve
from core.errors import ConfigError
from data import simulate
from tests.fake_purpleair import FakePurpleAir

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TIMEOUT = 300


def command(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`air-quality ARGS` in `cwd` (not the checkout), as a reader runs it."""
    return subprocess.run(
        [sys.executable, "-m", "air_quality_stream", *args],
        cwd=cwd,
        env=env or ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def helped(argv: list[str]) -> str:
    """What `air-quality ARGV` prints, which must end with exit code 0."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = cli.main(argv)  # a command that hands its arguments on returns
        except SystemExit as stop:  # argparse's own --help exits
            code = stop.code
    assert code == 0, argv
    return out.getvalue()


def test_help_works_at_every_level():
    top = helped(["--help"])
    names = list(commands())
    assert {"run", "backfill", "config", "report", "evaluate", "serve"} <= set(names)
    assert "reserved" not in top  # every reserved name has its module
    for name in names:
        assert f"usage: air-quality {name}" in helped([name, "--help"]), name
    for action in ("show", "check", "explain", "reference"):
        assert f"usage: air-quality config {action}" in helped(["config", action, "--help"])
    for name in EVALUATIONS:
        assert f"usage: air-quality evaluate {name}" in helped(["evaluate", name, "--help"])


def test_every_option_of_the_configuration_is_one_flag():
    options = [
        (path, spec.name)
        for path, cls in groups()
        for spec in dataclasses.fields(cls)
        if not is_group(spec)
    ]
    python_only = {(("outputs",), "totals")}  # a sink: from Python only
    made = {(f.path, f.option) for f in flags()}
    assert made == set(options) - python_only
    names = [f.name for f in flags()]
    assert len(names) == len(set(names))
    run_help = helped(["run", "--help"])
    assert all(f"--{name}" in run_help for name in names)


def test_the_configuration_page_is_what_the_command_prints():
    from air_quality_stream.commands.config import reference

    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == reference(), "stale: air-quality config reference > docs/configuration.md"


def test_flags_give_what_the_keywords_give():
    argv = [
        "--threshold", "0.8", "--impute-fields", "humidity,temperature", "--no-validate",
        "--bbox=-122.5,38.0,-121.8,37.3", "--flatline", "false", "--purpleair-interval", "60",
        "--ranges", "{humidity = [0, 100]}", "--output", "a.db", "--show-only", "1,2",
    ]  # fmt: skip
    from air_quality_stream.runs import resolve_args

    args = cli.parser().parse_args(["run", *argv])
    got, _tree = resolve_args(args)
    want = resolve(
        threshold=0.8,
        impute_fields=("humidity", "temperature"),
        validate=False,
        flatline=None,
        purpleair={"bbox": (-122.5, 38.0, -121.8, 37.3), "interval": 60.0, "show_only": (1, 2)},
        ranges={"humidity": (0, 100)},
        output="a.db",
    )
    assert got == want
    assert parse_value("data/polls.jsonl", str | None) == "data/polls.jsonl"
    assert parse_value("123", str) == "123"


def stopped(argv: list[str], cwd: Path, monkeypatch) -> tuple[int, str, str]:
    """`air-quality ARGV` in this process (what stops before the run never starts the engine):
    exit code, stdout, stderr."""
    monkeypatch.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def config_error_code(tmp_path_factory) -> int:
    """The exit code of `python -m config` on a bad file."""
    bad = tmp_path_factory.mktemp("bad") / "bad.toml"
    bad.write_text("[detection]\nthreshold = 2\n")
    command = [sys.executable, "-m", "config", str(bad)]
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True).returncode


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--threshold", "2"], "[detection] threshold: 2.0 is out of range; allowed: from 0 to 1"),
        (["--source", "missing.jsonl"], "[source] path: no such file: missing.jsonl"),
        (
            ["--output", "nowhere/a.jsonl"],
            "[outputs] anomalies: the folder 'nowhere' does not exist; allowed: a JSON-lines "
            "file of its own",
        ),
        (
            ["--readings", "folder"],
            "[outputs] readings: 'folder' is a folder; allowed: a JSON-lines file of its own",
        ),
        (
            ["--source", "purpleair"],
            "[source.purpleair] no API key: set PURPLEAIR_API_KEY (a PurpleAir read key, "
            "from https://develop.purpleair.com)",
        ),
        (["-p", "0"], "--processes: 0 is out of range; allowed: at least 1"),
        (["--engine", "readings"], "[run] engine: removed: the flow has one engine (columns)"),
    ],
)
def test_what_cannot_work_is_one_line_and_the_config_exit_code(
    tmp_path, monkeypatch, config_error_code, argv, error
):
    (tmp_path / "folder").mkdir()
    monkeypatch.delenv("PURPLEAIR_API_KEY", raising=False)
    code, out, err = stopped(["run", *argv], tmp_path, monkeypatch)
    assert (code, out, err) == (config_error_code, "", f"configuration error: {error}\n")
    assert config_error_code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]  # nothing made


def test_a_key_the_api_refuses_is_one_line_before_the_run(tmp_path, monkeypatch):
    polls = simulate.generate(seed=3, n_sensors=5, hours=0.2).polls
    monkeypatch.setenv("PURPLEAIR_API_KEY", "not-the-key")
    with FakePurpleAir(polls) as server:
        argv = ["run", "--source", "purpleair", "--base-url", server.base_url]
        code, out, err = stopped(argv, tmp_path, monkeypatch)
        asked = [r["path"] for r in server.requests]
    host = server.base_url.split("/")[2]
    assert (code, out) == (1, "")
    assert err == (
        "configuration error: [source.purpleair] the API refused the key in PURPLEAIR_API_KEY "
        f"(401 from {host})\n"
    )
    assert asked == ["/v1/keys"]  # no sensor data asked for


def test_a_live_run_with_a_good_key_reads_the_api(tmp_path):
    polls = simulate.generate(seed=3, n_sensors=5, hours=0.2).polls
    with FakePurpleAir(polls) as server:
        env = {**ENV, "PURPLEAIR_API_KEY": "test-key"}
        argv = ["run", "--source", "purpleair", "--base-url", server.base_url]
        argv += [
            "--purpleair-interval",
            "0.1",
            "--max-polls",
            str(len(polls)),
            "--summary-json",
            "s.json",
        ]
        done = command(*argv, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    rows = sum(len(p["data"]) for p in polls)
    assert json.loads((tmp_path / "s.json").read_text())["totals"]["readings"] == rows


def test_a_database_that_refuses_the_password_is_a_configuration_error(postgres_server):
    with pytest.raises(ConfigError, match="refused the connection") as refused:
        check_postgres("[outputs] anomalies", postgres_server.url_for(password="wrong"))
    assert "wrong" not in str(refused.value)
    check_postgres("[outputs] anomalies", postgres_server.url_for())  # the right one: no error
