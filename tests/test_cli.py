"""The ``qqgate`` command as an operator meets it: ``check`` and ``secret``."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest

from qqgate import checks
from qqgate.cli import main
from qqgate.config import settings_from_mapping

from .servers import ROOT

APP_KEY = "app-key-that-must-never-be-printed-42"
SECRET = secrets.token_urlsafe(48)
GOOD = {
    "app_id": "101000001",
    "app_key": APP_KEY,
    "secret_key": SECRET,
    "redirect_uri": "https://app.example.com/_qqgate/callback",
}


@pytest.fixture(autouse=True)
def no_qqgate_environment(monkeypatch) -> None:
    """QQGATE_* variables of the machine running the tests must not leak into the configs."""
    for name in [n for n in os.environ if n.startswith("QQGATE_")]:
        monkeypatch.delenv(name)


def write_ini(tmp_path, **values: str):
    path = tmp_path / "gate.ini"
    lines = "".join(f"{key} = {value}\n" for key, value in values.items())
    path.write_text(f"[qqgate]\n{lines}", encoding="utf-8")
    return path


def check(capsys, path) -> tuple[int, str, str]:
    code = main(["check", "-c", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


# --- check -----------------------------------------------------------------------------------------


def test_check_ok_prints_summary_and_callback_without_secrets(tmp_path, capsys) -> None:
    code, out, err = check(capsys, write_ini(tmp_path, **GOOD))
    assert code == 0 and err == ""
    assert out.startswith(f"{tmp_path / 'gate.ini'}: OK")
    assert "app_id = 101000001" in out
    assert APP_KEY not in out and SECRET not in out
    assert "app_key = (set, " in out and "secret_key = (1 key(s) set)" in out
    callback = "callback URL to register at QQ Connect: https://app.example.com/_qqgate/callback"
    assert callback in out.splitlines()
    assert "warning" not in out


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"cookie_samesite": "sometimes", "timeout": "soon"}, id="unparseable"),
        pytest.param({"app_id": "abc", "secret_key": "x"}, id="invalid"),
    ],
)
def test_check_problems_name_the_keys_and_exit_1(tmp_path, capsys, bad) -> None:
    code, out, err = check(capsys, write_ini(tmp_path, **{**GOOD, **bad}))
    assert code == 1 and out == ""
    assert f"{len(bad)} problem(s)" in err
    for key in bad:
        assert re.search(rf"^  {key}: ", err, re.M), key
    assert APP_KEY not in err and SECRET not in err


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        pytest.param({"cookie_domain": "example.com"}, "cannot have a cookie_domain", id="domain"),
        pytest.param({"cookie_secure": "false"}, "needs cookie_secure = true", id="not-secure"),
    ],
)
def test_check_refuses_a_host_prefix_the_browser_would_drop(tmp_path, capsys, bad, says) -> None:
    code, out, err = check(capsys, write_ini(tmp_path, **GOOD, cookie_name="__Host-qqgate", **bad))
    assert code == 1 and out == ""
    assert re.search(rf"^  cookie_name: .*{says}", err, re.M), err


def test_check_missing_file_is_one_line_not_a_traceback(tmp_path, capsys) -> None:
    code, out, err = check(capsys, tmp_path / "nope.ini")
    assert code == 1 and out == ""
    assert "config file: cannot read" in err and "Traceback" not in err


def test_check_missing_file_from_a_shell_has_no_traceback(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qqgate.cli", "check", "-c", str(tmp_path / "nope.ini")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "nope.ini" in result.stderr


def test_check_reports_a_broken_template(tmp_path, capsys) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "sign_in.html").write_text("<h1>$heading $colour</h1>", encoding="utf-8")
    code, _, err = check(capsys, write_ini(tmp_path, **GOOD, templates_dir=str(templates)))
    assert code == 1
    assert "templates_dir:" in err and "sign_in.html" in err and "$colour" in err


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        pytest.param(
            {"cookie_domain": "example.org"}, "cookie_domain", "does not cover", id="other-domain"
        ),
        pytest.param(
            {"cookie_domain": "pp.example.com"}, "cookie_domain", "does not cover", id="suffix-only"
        ),
        pytest.param({"cookie_secure": "false"}, "cookie_secure", "plain http", id="insecure"),
        pytest.param({"secret_key": "s" * 40}, "secret_key", "40 characters", id="short"),
        pytest.param({"secret_key": "ab" * 30}, "secret_key", "too few", id="low-entropy"),
        pytest.param(
            {"secret_key": f"{SECRET} {'z' * 48}"}, "secret_key", "key #2", id="second-key"
        ),
    ],
)
def test_check_warns_but_still_passes(tmp_path, capsys, overrides, key, fragment) -> None:
    code, out, _ = check(capsys, write_ini(tmp_path, **{**GOOD, **overrides}))
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, out
    assert warnings[0].startswith(f"warning: {key}: ") and fragment in warnings[0]
    assert SECRET not in out and "s" * 40 not in out


@pytest.mark.parametrize(
    ("domain", "host"),
    [
        pytest.param("app.example.com", "app.example.com", id="same"),
        pytest.param("example.com", "app.example.com", id="parent"),
    ],
)
def test_cookie_domain_covering_the_callback_host_is_fine(domain, host) -> None:
    settings = settings_from_mapping(
        {**GOOD, "redirect_uri": f"https://{host}/_qqgate/callback", "cookie_domain": domain}
    )
    assert checks.warnings(settings) == []


def test_plain_http_on_loopback_without_secure_cookies_is_fine() -> None:
    settings = settings_from_mapping(
        {
            **GOOD,
            "redirect_uri": "http://127.0.0.1:8000/_qqgate/callback",
            "cookie_secure": "false",
        }
    )
    assert checks.warnings(settings) == []


def test_a_secret_copied_from_the_example_file_is_flagged(tmp_path, capsys) -> None:
    copied = "this-is-the-documented-example-secret-key-0123456789"
    (tmp_path / "gate.ini.example").write_text(
        f"[qqgate]\nsecret_key = {copied}\n", encoding="utf-8"
    )
    code, out, _ = check(capsys, write_ini(tmp_path, **{**GOOD, "secret_key": copied}))
    assert code == 0
    assert "warning: secret_key: key #1 is a value from gate.ini.example" in out


def test_example_values_include_the_shipped_example() -> None:
    values = checks.example_values()
    assert "https://app.example.com/_qqgate/callback" in values and "" not in values


def test_entropy_estimate() -> None:
    assert checks.entropy_bits("s" * 40) == 0
    assert checks.entropy_bits(secrets.token_urlsafe(48)) > 256


# --- secret ----------------------------------------------------------------------------------------


def test_secret_prints_a_fresh_strong_key(capsys) -> None:
    assert main(["secret"]) == 0
    first = capsys.readouterr().out
    main(["secret"])
    second = capsys.readouterr().out
    assert re.fullmatch(r"[A-Za-z0-9_-]{64}\n", first) and first != second
    settings = settings_from_mapping({**GOOD, "secret_key": first.strip()})
    assert checks.warnings(settings) == []


def test_check_summary_lists_every_key_but_the_secrets(tmp_path, capsys) -> None:
    from qqgate.config import KEYS

    path = write_ini(tmp_path, **GOOD, upstream="http://127.0.0.1:8080", site_name="我的站")
    code, out, _ = check(capsys, path)
    assert code == 0
    for key in KEYS:
        assert re.search(rf"^  {key} = ", out, re.MULTILINE) or key in ("app_key", "secret_key"), (
            key
        )
    assert "upstream = http://127.0.0.1:8080" in out and "site_name = 我的站" in out


def test_serve_refuses_a_broken_template_before_starting_gunicorn(
    tmp_path, capsys, monkeypatch
) -> None:
    def execv(*args):
        raise AssertionError("serve started gunicorn with a broken template")

    monkeypatch.setattr(os, "execv", execv)
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "error.html").write_text("<p>$no_such_variable</p>", encoding="utf-8")
    path = write_ini(tmp_path, **GOOD, templates_dir=str(tmp_path / "tpl"))
    assert main(["serve", "-c", str(path)]) == 1
    assert "templates_dir" in capsys.readouterr().err
