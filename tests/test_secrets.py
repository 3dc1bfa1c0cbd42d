"""No credential reaches a message: retry warnings, final errors, the driver's own errors (also in
a traceback), configuration errors and `python -m config`, for every form of URL a password can
hide in. The PostgreSQL cases run against the real server (`tests/postgres.py`)."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import traceback

import pytest

from config import ConfigError, resolve
from config.__main__ import main as print_config
from core.redaction import redact
from sinks.database import DatabaseRejected, DatabaseSink, DatabaseUnavailable
from tests.conftest import ROOT

#: Each URL form, with the secret text that must never be shown (`{port}`: the test server's).
FORMS = {
    "no user name": ("postgresql://:Pw1-secret@127.0.0.1:{port}/postgres", "Pw1-secret"),
    "bad %-encoding": ("postgresql://aqs:Pw2%zz-secret@127.0.0.1:{port}/postgres", "zz-secret"),
    "unencoded @": ("postgresql://aqs:Pw3@at-secret@127.0.0.1:{port}/postgres", "at-secret"),
    "unencoded /": ("postgresql://aqs:Pw4/sl-secret@127.0.0.1:{port}/postgres", "sl-secret"),
    "query string": (
        "postgresql://aqs@127.0.0.1:{port}/postgres?sslmode=disable&password=Pw5-secret",
        "Pw5-secret",
    ),
    "postgres scheme, user": ("postgres://aqs:Pw6-secret@127.0.0.1:{port}/postgres", "Pw6-secret"),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_url_is_shown_without_its_secret_but_with_its_host(form):
    url, secret = FORMS[form]
    url = url.format(port=5432)
    shown = redact(url)
    assert secret not in shown and "***" in shown
    assert "127.0.0.1:5432/postgres" in shown


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("host=db user=me password=Kv-secret dbname=aq", "Kv-secret"),
        ("host=db password='with space-secret' dbname=aq", "space-secret"),
        ("see https://me:Http-secret@hooks.example/x for details", "Http-secret"),
        ("GET https://api.example/v1?api_key=Key-secret&x=1", "Key-secret"),
        ("postgresql://me:Pct%41-secret@db/aq", "Pct%41-secret"),
    ],
)
def test_credentials_in_any_text_are_masked(text, secret):
    assert secret not in redact(text)
    assert secret.split("-")[0] not in redact(text)


def test_a_driver_message_repeating_a_piece_of_the_password_is_masked():
    url = "postgresql://aqs:Pw@piece-secret@127.0.0.1/postgres"
    message = "failed to resolve host 'piece-secret@127.0.0.1': Name or service not known"
    assert "piece-secret" not in redact(message, url)
    percent = "postgresql://aqs:Pw%zzsecret@127.0.0.1/postgres"
    assert "zzsecret" not in redact('invalid percent-encoded token: "Pw%zzsecret"', percent)


def _shown(failure: BaseException, caplog) -> str:
    """Everything a person would see: the log's warnings and the whole traceback."""
    logs = [record.getMessage() for record in caplog.records]
    trace = "".join(traceback.format_exception(failure))
    return "\n".join([*logs, trace])


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_real_servers_refusal_shows_no_secret_in_warnings_error_or_traceback(
    form, postgres_server, caplog
):
    url, secret = FORMS[form]
    url = url.format(port=postgres_server.port)
    sink = DatabaseSink(url, "readings", timeout=1.0, retries=1, backoff={"base": 0.01})
    with (
        caplog.at_level(logging.WARNING, "air_quality.database"),
        pytest.raises((DatabaseUnavailable, DatabaseRejected)) as failure,
    ):
        sink.build("readings_out", 0, 1)
    shown = _shown(failure.value, caplog)
    first_piece = re.search(r"Pw\d", url).group()
    assert secret not in shown and first_piece not in shown
    assert "***" in shown and "could not connect" in shown


def test_bytewax_run_prints_no_secret_anywhere(postgres_server):
    """The whole output of a failed run (retry warnings, Bytewax's chain of errors), for a
    password the driver echoes and one it takes a piece of for a host name; both at once."""
    runs = []
    for form in ("bad %-encoding", "unencoded @"):
        url, secret = FORMS[form]
        url = url.format(port=postgres_server.port)
        database = {"timeout": 1.0, "retries": 1, "backoff": {"base": 0.01, "cap": 0.01}}
        target = f"dataflows.air_quality:build_flow(output={url!r}, database={database!r})"
        command = [sys.executable, "-m", "bytewax.run", target]
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        runs.append((secret, subprocess.Popen(command, cwd=ROOT, **pipes)))
    for secret, proc in runs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode != 0
        assert "could not connect" in err and ":***@127.0.0.1" in err
        assert secret not in out + err and "Pw" not in out + err
    assert "retry 1 of 1" in err  # the unencoded @ is retried (a host that does not resolve)


def test_a_configuration_error_quoting_a_url_masks_its_password():
    with pytest.raises(ConfigError) as raised:
        resolve(sample=3, sample_path="postgresql://me:Cfg-secret@db.example/aq")
    assert "Cfg-secret" not in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        resolve(output="sqlite:///:memory:", readings="postgresql://:Cfg2-secret@db/aq")
    assert "Cfg2-secret" not in str(raised.value)


def test_the_configuration_printer_masks_passwords_and_api_keys(tmp_path, capsys):
    path = tmp_path / "flow.toml"
    path.write_text(
        '[source.purpleair]\nbase_url = "https://api.example/v1?api_key=Prn1-secret"\n'
        '[outputs]\nanomalies = "postgresql://:Prn2-secret@db.example/aq"\n'
        'readings = "postgresql://me@db.example/aq?password=Prn3-secret"\n'
        'events = "postgres://me:Prn4@x-secret@db.example/aq"\n'
        "[outputs.webhook]\n"
        'url = "https://hook:Prn5-secret@alerts.example/hook?token=Prn6-secret"\n'
        'headers = { Authorization = "Bearer Prn7-secret", "X-API-Key" = "Prn8-secret", '
        'Accept = "application/json" }\n'
    )
    assert print_config([str(path)]) == 0
    out = capsys.readouterr().out
    assert "Prn" not in out
    assert 'anomalies = "postgresql://:***@db.example/aq"' in out
    assert 'readings = "postgresql://me@db.example/aq?password=***"' in out
    assert 'events = "postgres://me:***@db.example/aq"' in out
    assert '"X-API-Key" = "***"' in out or 'X-API-Key = "***"' in out
    assert 'Accept = "application/json"' in out  # what is no secret is shown


def test_a_webhooks_warnings_errors_and_dead_letters_show_no_secret(tmp_path, caplog):
    from sinks.webhook import WebhookSink
    from sources.retry import Backoff

    dead = tmp_path / "undelivered.jsonl"
    url = "http://hook:Wh1-secret@127.0.0.1:9/alerts?token=Wh2-secret"
    sink = WebhookSink(url, dead_letters=str(dead), retries=1, backoff=Backoff(0.01, 0.01))
    with caplog.at_level(logging.WARNING, "air_quality.webhook"):
        sink.build("webhook_out", 0, 1).write_batch([{"sensor_index": 1, "score": 0.9}])
    shown = "\n".join([*(r.getMessage() for r in caplog.records), dead.read_text()])
    assert "retry 1" in shown and "could not deliver" in shown and "127.0.0.1:9" in shown
    assert "Wh1" not in shown and "Wh2" not in shown


def test_an_unreachable_url_source_is_named_without_its_secret():
    from sources.documents import SourceError, check_reachable

    with pytest.raises(SourceError) as raised:
        check_reachable("http://me:Src1-secret@127.0.0.1:9/polls.json?api_key=Src2-secret")
    assert "cannot reach http://me:***@127.0.0.1:9/polls.json?api_key=***" in str(raised.value)
