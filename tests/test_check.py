"""``qqgate check`` as an operator and a CI job run it (issue 13): every problem in one run, the
INI file's line numbers, misspelt ``QQGATE_*`` variables, values named by the variable they came
from, ``--strict``; and ``qqgate serve --bind`` checked before gunicorn starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from qqgate.cli import main
from qqgate.config import ConfigError, load_settings
from qqgate.values import bind_address

from .servers import ROOT
from .test_cli import GOOD, check, write_ini


@pytest.fixture(autouse=True)
def no_qqgate_environment(monkeypatch) -> None:
    for name in [n for n in os.environ if n.startswith("QQGATE_")]:
        monkeypatch.delenv(name)


def test_every_problem_in_one_run(tmp_path, capsys) -> None:
    bad = {
        "app_id": "abc",  # parses, fails a check
        "secret_key": "short",  # parses, fails a check
        "timeout": "soon",  # does not parse
        "cookie_samesite": "sometimes",  # does not parse
        "upstream": "ftp://x",  # parses, fails a check
        "redirect_uri": "http://example.com/_qqgate/callback",  # parses, fails a check
    }
    code, out, err = check(capsys, write_ini(tmp_path, **{**GOOD, **bad}))
    assert code == 1 and out == ""
    assert f"{len(bad)} problem(s)" in err, err
    for key in bad:
        assert re.search(rf"^  {key}: ", err, re.M), (key, err)


def test_a_value_that_does_not_parse_does_not_hide_the_checks_of_the_others() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, **{**GOOD, "timeout": "soon", "app_id": "abc", "app_key": ""})
    assert sorted(info.value.keys) == ["app_id", "app_key", "timeout"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param(
            "[qqgate]\napp_id = 1\nthis line is broken\n", "line 3: not a `key", id="line"
        ),
        pytest.param("app_id = 1\n[qqgate]\n", "line 1: text before the first", id="no-header"),
        pytest.param(
            "[qqgate]\napp_id = 1\napp_id = 2\n", "line 3: 'app_id' given twice", id="dup"
        ),
    ],
)
def test_a_malformed_ini_names_the_line_without_repeating_it(tmp_path, capsys, text, fragment):
    path = tmp_path / "gate.ini"
    path.write_text(text + "secret_key oops-this-is-secret-0123456789\n", encoding="utf-8")
    code, _, err = check(capsys, path)
    assert code == 1 and fragment in err, err
    assert "oops-this-is-secret" not in err


def test_unknown_qqgate_variables_are_problems(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("QQGATE_UPSTRAM", "http://127.0.0.1:8080")
    monkeypatch.setenv("QQGATE_CONFIG", "ignored-here")  # the gunicorn settings are known
    monkeypatch.setenv("QQGATE_BIND", "127.0.0.1:8000")
    code, out, err = check(capsys, write_ini(tmp_path, **GOOD))
    assert code == 1 and out == ""
    assert "QQGATE_UPSTRAM: unknown variable" in err and "did you mean QQGATE_UPSTREAM?" in err
    assert "QQGATE_CONFIG" not in err and "QQGATE_BIND" not in err


def test_a_bad_value_from_the_environment_names_its_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("QQGATE_UPSTREAM_TIMEOUT", "banana")
    code, _, err = check(capsys, write_ini(tmp_path, **GOOD, timeout="never"))
    assert code == 1
    assert (
        "upstream_timeout: expected a number of seconds, got 'banana' (from QQGATE_UPSTREAM_TIMEOUT)"
        in err
    )
    assert re.search(r"^  timeout: .*'never'$", err, re.M), err  # from the file: no variable


def test_strict_makes_warnings_problems(tmp_path, capsys) -> None:
    path = write_ini(tmp_path, **GOOD, cookie_domain="other.example")
    assert main(["check", "-c", str(path)]) == 0
    assert "warning: cookie_domain" in capsys.readouterr().out
    assert main(["check", "--strict", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "1 warning(s), problems with --strict" in err
    assert "  cookie_domain: other.example does not cover" in err
    assert main(["check", "--strict", "-c", str(write_ini(tmp_path, **GOOD))]) == 0


@pytest.mark.parametrize(
    "bind",
    ["127.0.0.1:8000", "[::1]:8000", "0.0.0.0:1", "localhost:65535", "unix:/run/qqgate.sock"],
)
def test_good_bind_addresses(bind) -> None:
    assert bind_address(bind) == bind


@pytest.mark.parametrize(
    ("bind", "fragment"),
    [
        pytest.param("127.0.0.1:99999", "from 1 to 65535", id="port-too-big"),
        pytest.param("127.0.0.1:0", "from 1 to 65535", id="port-zero"),
        pytest.param("127.0.0.1:http", "from 1 to 65535", id="port-name"),
        pytest.param("8000", "expected HOST:PORT", id="no-host"),
        pytest.param("::1:8000", "expected HOST:PORT", id="bare-ipv6"),
        pytest.param(":8000", "expected HOST:PORT", id="empty-host"),
    ],
)
def test_bad_bind_addresses(bind, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        bind_address(bind)


def test_serve_with_a_bad_bind_is_one_line_not_a_traceback(tmp_path) -> None:
    path = write_ini(tmp_path, **GOOD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QQGATE_")}
    args = [sys.executable, "-m", "qqgate.cli", "serve", "-c", str(path)]
    result = subprocess.run(
        [*args, "--bind", "127.0.0.1:99999"],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "qqgate: cannot start: --bind 127.0.0.1:99999: "
        "the port must be a number from 1 to 65535, got '99999'"
    )


def test_gunicorn_conf_refuses_a_bad_qqgate_bind(tmp_path) -> None:
    path = write_ini(tmp_path, **GOOD)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QQGATE_")}
    env.update(PYTHONPATH=str(ROOT), QQGATE_CONFIG=str(path), QQGATE_BIND="127.0.0.1:99999")
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "QQGATE_BIND: the port must be a number from 1 to 65535" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr
