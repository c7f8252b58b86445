"""The README's "Wrapping an app" examples, run as written (Flask, bare WSGI): a signed-in visitor is
greeted by name, a visitor on a public path reaches the app without a 500, anyone else is sent to
sign in. The code is taken from the README itself, so the README cannot drift from what works."""

from __future__ import annotations

import re
from typing import Any

import pytest
from webtest import TestApp

from .conftest import APP_ID
from .live import PROCESS_SECRET, session_token
from .rig import OPENID
from .servers import ROOT

HTML = {"Accept": "text/html"}
HOSTILE = "<script>alert(1)</script>🐧"


def readme_example(label: str) -> str:
    """The first ```python block after the line ``{label}:`` in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(label)}:?\n\n```python\n(.*?)```", text, re.S | re.M)
    assert match, f"no python example after {label!r} in README.md"
    return match.group(1)


def run_example(label: str, name: str, tmp_path, monkeypatch, public: str) -> TestApp:
    """Run the README's ``label`` example in a directory holding the gate.ini it loads."""
    (tmp_path / "gate.ini").write_text(
        "[qqgate]\n"
        f"app_id = {APP_ID}\n"
        "app_key = example-app-key\n"
        f"secret_key = {PROCESS_SECRET}\n"
        "redirect_uri = https://app.example.com/_qqgate/callback\n"
        f"public_paths = {public}\n"
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(readme_example(label), f"README.md ({label})", "exec"), namespace)
    if label == "Flask":  # the example's view, on a public path too
        namespace["app"].add_url_rule("/public/", "public_home", namespace["home"])
    return TestApp(namespace[name], extra_environ={"HTTP_HOST": "app.example.com"})


EXAMPLES = [
    pytest.param("Flask", "app", id="flask"),
    pytest.param("Bare WSGI", "application", id="bare-wsgi"),
]


@pytest.fixture(autouse=True)
def _flask_installed(request) -> None:
    if "flask" in request.node.name:
        pytest.importorskip("flask")


@pytest.mark.parametrize(("label", "name"), EXAMPLES)
def test_signed_in_visitor_is_greeted_by_name(label, name, tmp_path, monkeypatch) -> None:
    app = run_example(label, name, tmp_path, monkeypatch, public="/public/")
    cookie = f"__Host-qqgate={session_token(OPENID, HOSTILE)}"  # the default name over https
    response = app.get("/", headers={"Cookie": cookie, "X-QQ-OpenID": "SPOOFED"})
    assert response.status_int == 200
    assert "Hello " in response.text and "SPOOFED" not in response.text
    if label == "Flask":  # HTML: the nickname is escaped
        assert OPENID in response.text and "<script>" not in response.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;🐧" in response.text
    else:
        assert response.text == f"Hello {HOSTILE}"


@pytest.mark.parametrize(("label", "name"), EXAMPLES)
def test_public_path_without_a_session_reaches_the_app(label, name, tmp_path, monkeypatch) -> None:
    app = run_example(label, name, tmp_path, monkeypatch, public="/public/")
    response = app.get("/public/", headers={**HTML, "X-QQ-OpenID": "SPOOFED"}, expect_errors=True)
    assert response.status_int == 200, response.text
    assert response.text.startswith("Hello, visitor") and "SPOOFED" not in response.text


@pytest.mark.parametrize(("label", "name"), EXAMPLES)
def test_protected_path_without_a_session_is_sent_to_sign_in(
    label, name, tmp_path, monkeypatch
) -> None:
    app = run_example(label, name, tmp_path, monkeypatch, public="/public/")
    response = app.get("/", headers=HTML, expect_errors=True)
    assert response.status_int == 302 and "/_qqgate/login?next=%2F" in response.location
