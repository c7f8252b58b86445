"""The front configurations in deploy/, read as data: each names the gate's routes and exactly the
headers ``/_qqgate/auth`` sends, and clears every identity header a client could send.

nginx and Caddy also run for real (tests/test_nginx_auth_request.py, tests/test_caddy.py). Traefik
and ingress-nginx do not run here: their files are parsed (PyYAML), and the gate is asked the way
each of them asks (the request headers their documentation and source name) to check that it
answers what that front expects: Traefik gets the full answer it passes to the browser, and
ingress-nginx, which is nginx's auth_request, a bare 401 (a 302 would become nginx's 500).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from qqgate.headers import IdentityHeaders
from qqgate.session import Identity

from .conftest import make_settings
from .rig import blank, make_rig
from .servers import ROOT

SETTINGS = make_settings(unionid="true")
AUTH = SETTINGS.prefix + "/auth"
IDENTITY = Identity("0123456789ABCDEF0123456789ABCDEF", "小明", "", "UNION", 0)
SENT = {name for name, _ in IdentityHeaders(SETTINGS).headers(IDENTITY)}
CLEARED = SENT | {"Remote-User"}  # Remote-User: apps that read it must never get a client's
HTML = "text/html,application/xhtml+xml"


def test_the_gate_sends_the_names_the_files_use() -> None:
    assert {"X-QQ-OpenID", "X-QQ-Nickname", "X-QQ-UnionID"} == SENT


def deploy_yaml(name: str) -> list[Any]:
    yaml = pytest.importorskip("yaml")
    return list(yaml.safe_load_all((ROOT / "deploy" / name).read_text()))


# --- Traefik ------------------------------------------------------------------------------------


def test_traefik_file_names_the_auth_route_and_the_identity_headers() -> None:
    (config,) = deploy_yaml("traefik.yml")
    http = config["http"]
    forward = http["middlewares"]["qqgate-auth"]["forwardAuth"]
    assert urlsplit(forward["address"]).path == AUTH
    assert forward["trustForwardHeader"] is False
    assert set(forward["authResponseHeaders"]) == CLEARED
    strip = http["middlewares"]["qqgate-strip"]["headers"]["customRequestHeaders"]
    assert strip == dict.fromkeys(CLEARED, "")
    assert http["routers"]["app"]["middlewares"] == ["qqgate-strip", "qqgate-auth"]
    assert f"PathPrefix(`{SETTINGS.prefix}/`)" in http["routers"]["qqgate"]["rule"]


# What Traefik's ForwardAuth sends the gate: the client's headers and its own X-Forwarded-*.
TRAEFIK = {
    "X-Forwarded-Method": "GET",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "app.example.com",
    "X-Forwarded-Uri": "/app?x=1",
    "X-Forwarded-For": "203.0.113.9",
}


def test_traefik_question_gets_the_answer_it_passes_to_the_browser() -> None:
    rig = make_rig(unionid="true")
    navigation = rig.call(blank(AUTH, headers={**TRAEFIK, "Accept": HTML}))
    assert navigation.status_int == 302
    assert navigation.headers["Location"] == f"{SETTINGS.prefix}/login?next=%2Fapp%3Fx%3D1"
    api = rig.call(blank(AUTH, headers={**TRAEFIK, "X-Forwarded-Method": "POST"}))
    assert api.status_int == 401 and api.json["error"] == "login_required"
    cookie = f"qqgate={rig.session_for(unionid='U')}"
    granted = rig.call(blank(AUTH, cookie=cookie, headers={**TRAEFIK, "X-QQ-OpenID": "SPOOF"}))
    assert granted.status_int == 202
    assert {name for name in granted.headers if name.startswith("X-QQ-")} == SENT
    assert granted.headers["X-QQ-OpenID"] != "SPOOF"


# --- ingress-nginx ------------------------------------------------------------------------------


def ingress_annotations() -> dict[str, str]:
    app = next(doc for doc in deploy_yaml("ingress-nginx.yaml") if doc["metadata"]["name"] == "app")
    return {
        key.removeprefix("nginx.ingress.kubernetes.io/"): value
        for key, value in app["metadata"]["annotations"].items()
    }


def test_ingress_nginx_annotations_name_the_routes_and_the_identity_headers() -> None:
    annotations = ingress_annotations()
    assert urlsplit(annotations["auth-url"]).path == AUTH
    signin = urlsplit(annotations["auth-signin"])
    assert signin.path == SETTINGS.prefix + "/login"
    assert signin.query == "next=$escaped_request_uri"
    names = {name.strip() for name in annotations["auth-response-headers"].split(",")}
    assert names == CLEARED


def test_ingress_nginx_routes_the_gates_prefix_to_the_gate() -> None:
    gate = next(
        doc for doc in deploy_yaml("ingress-nginx.yaml") if doc["metadata"]["name"] == "qqgate"
    )
    (path,) = gate["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == SETTINGS.prefix + "/" and path["pathType"] == "Prefix"
    assert "annotations" not in gate["metadata"], "the gate's own routes need no auth"


# What ingress-nginx's auth location sends: the client's headers plus these.
INGRESS = {
    "X-Original-URL": "https://app.example.com/app?x=1",
    "X-Original-Method": "GET",
    "X-Sent-From": "nginx-ingress-controller",
    "X-Auth-Request-Redirect": "/app?x=1",
    "X-Forwarded-For": "203.0.113.9",
}


@pytest.mark.parametrize("accept", [HTML, "application/json"])
def test_ingress_nginx_question_gets_a_bare_401_never_a_redirect(accept) -> None:
    response = make_rig().call(blank(AUTH, headers={**INGRESS, "Accept": accept}))
    assert response.status_int == 401 and "Location" not in response.headers


# --- Caddy and nginx (which also run for real) ----------------------------------------------------


def test_caddyfile_copies_what_the_gate_sends_and_clears_the_rest() -> None:
    text = (ROOT / "deploy" / "Caddyfile").read_text()
    assert re.search(rf"^\s*uri {re.escape(AUTH)}$", text, re.M)
    (copied,) = re.findall(r"^\s*copy_headers (.+)$", text, re.M)
    assert set(copied.split()) <= SENT and {"X-QQ-OpenID", "X-QQ-Nickname"} <= set(copied.split())
    assert set(re.findall(r"^\s*request_header -(\S+)$", text, re.M)) == CLEARED


def test_nginx_conf_copies_and_always_sets_every_identity_header() -> None:
    text = (ROOT / "deploy" / "nginx-auth-request.conf").read_text()
    assert f"auth_request {AUTH};" in text
    for name in SENT:
        variable = "$upstream_http_" + name.lower().replace("-", "_")
        assert re.search(rf"auth_request_set (\$\w+) {re.escape(variable)};", text), name
    set_headers = set(re.findall(r"proxy_set_header (X-QQ-\S+|Remote-User) ", text))
    assert set_headers == CLEARED


def test_every_deploy_file_and_test_is_in_the_readmes_recipes() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    recipes = readme.split("### Deploy recipes")[1].split("\n### ")[0]
    for path in (ROOT / "deploy").iterdir():
        assert f"`{path.name}`" in recipes, f"deploy/{path.name} is not in README's Deploy recipes"
    for test in re.findall(r"`(tests/test_\w+\.py)`", recipes):
        assert (ROOT / test).exists(), test
