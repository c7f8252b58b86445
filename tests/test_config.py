from __future__ import annotations

import pytest

from qqgate.config import ConfigError, load_settings, settings_from_mapping

from .conftest import APP_ID, APP_KEY, SECRET, make_settings

GOOD_INI = f"""
[qqgate]
app_id = {APP_ID}
app_key = {APP_KEY}
redirect_uri = https://app.example.com/_qqgate/callback
secret_key = {SECRET}
public_paths = /static/ /healthz
allowed_openids = AAAA, BBBB
session_max_age = 12h
cookie_secure = no
timeout = 2.5
"""


@pytest.fixture(autouse=True)
def _no_qqgate_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("QQGATE_"):
            monkeypatch.delenv(name)


def write(tmp_path, text: str):
    path = tmp_path / "gate.ini"
    path.write_text(text, encoding="utf-8")
    return path


def test_ini_file_is_parsed_into_typed_settings(tmp_path) -> None:
    settings = load_settings(write(tmp_path, GOOD_INI))
    assert settings.app_id == APP_ID
    assert settings.secret_keys == (SECRET,)
    assert settings.public_paths == ("/static/", "/healthz")
    assert settings.allowed_openids == frozenset({"AAAA", "BBBB"})
    assert settings.session_max_age == 12 * 3600
    assert settings.cookie_secure is False
    assert settings.timeout == 2.5
    assert settings.prefix == "/_qqgate"
    assert settings.cookie_samesite == "lax"


@pytest.mark.parametrize(
    ("given", "name"),
    [
        pytest.param({}, "__Host-qqgate", id="secure-host-only"),
        pytest.param({"cookie_secure": "false"}, "qqgate", id="not-secure"),
        pytest.param({"cookie_domain": "example.com"}, "qqgate", id="with-domain"),
        pytest.param({"cookie_name": "mygate"}, "mygate", id="named"),
    ],
)
def test_default_cookie_name_takes_the_host_prefix_where_legal(given, name) -> None:
    raw = {
        "app_id": APP_ID,
        "app_key": APP_KEY,
        "secret_key": SECRET,
        "redirect_uri": "https://app.example.com/_qqgate/callback",
        **given,
    }
    settings = settings_from_mapping(raw)
    assert (settings.cookie_name, settings.state_cookie_name) == (name, f"{name}_state")


def test_defaults_are_secure() -> None:
    settings = make_settings()
    assert settings.cookie_secure is True
    assert settings.cookie_samesite == "lax"
    assert settings.qq_base_url == "https://graph.qq.com"
    assert settings.session_max_age == 7 * 86400
    assert (settings.session_max_lifetime, settings.session_refresh) == (30 * 86400, 86400)
    assert settings.timeout == 5.0
    assert settings.unionid is False


def test_environment_overrides_file_and_overrides_win(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("QQGATE_APP_KEY", "from-env")
    monkeypatch.setenv("QQGATE_TIMEOUT", "3")
    settings = load_settings(write(tmp_path, GOOD_INI), timeout="4")
    assert settings.app_key == "from-env"
    assert settings.timeout == 4.0


def test_secrets_can_live_only_in_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("QQGATE_APP_ID", APP_ID)
    monkeypatch.setenv("QQGATE_APP_KEY", APP_KEY)
    monkeypatch.setenv("QQGATE_SECRET_KEY", SECRET)
    monkeypatch.setenv("QQGATE_REDIRECT_URI", "https://a.example/_qqgate/callback")
    assert load_settings().app_key == APP_KEY


def test_secrets_are_not_in_repr() -> None:
    text = repr(make_settings())
    assert APP_KEY not in text and SECRET not in text


def test_settings_are_frozen() -> None:
    settings = make_settings()
    with pytest.raises(AttributeError):
        settings.app_id = "1"  # type: ignore[misc]


def test_key_rotation_list_keeps_order() -> None:
    settings = make_settings(secret_key=f"{'n' * 32} {SECRET}")
    assert settings.secret_keys == ("n" * 32, SECRET)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"app_id": APP_ID})
    assert set(info.value.keys) == {"app_key", "redirect_uri", "secret_key"}
    assert "app_key: missing" in str(info.value)


LIFETIME_UNDER_IDLE = {"session_max_age": "10d", "session_max_lifetime": "9d"}


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        pytest.param({"secret_key": "short"}, "secret_key", "shorter than 32", id="short-secret"),
        pytest.param(
            {"secret_key": f"{SECRET} short"}, "secret_key", "key #2", id="short-rotated-key"
        ),
        pytest.param({"app_id": "abc"}, "app_id", "numeric", id="non-numeric-app-id"),
        pytest.param(
            {"redirect_uri": "/_qqgate/callback"},
            "redirect_uri",
            "absolute",
            id="relative-redirect",
        ),
        pytest.param(
            {"redirect_uri": "https://a.example/cb"},
            "redirect_uri",
            "/_qqgate/callback",
            id="wrong-callback-path",
        ),
        pytest.param(
            {"redirect_uri": "http://a.example/_qqgate/callback"},
            "redirect_uri",
            "loopback",
            id="plain-http",
        ),
        pytest.param(
            {"redirect_uri": "https://a.example/_qqgate/callback?x=1"},
            "redirect_uri",
            "query",
            id="redirect-with-query",
        ),
        pytest.param(
            {"redirect_uri": "https://[::1/_qqgate/callback"},
            "redirect_uri",
            "valid URL",
            id="broken-url",
        ),
        pytest.param({"prefix": "/"}, "prefix", "path like", id="root-prefix"),
        pytest.param({"prefix": "/a b"}, "prefix", "path like", id="prefix-with-space"),
        pytest.param(
            {"qq_base_url": "ftp://graph.qq.com"}, "qq_base_url", "http(s)", id="base-url-scheme"
        ),
        pytest.param(
            {"qq_base_url": "http://graph.qq.com"},
            "qq_base_url",
            "loopback",
            id="base-url-plain-http",
        ),
        pytest.param({"timeout": "0"}, "timeout", "more than 0", id="zero-timeout"),
        pytest.param({"timeout": "soon"}, "timeout", "number", id="timeout-not-number"),
        pytest.param(
            {"session_max_age": "forever"}, "session_max_age", "seconds", id="bad-duration"
        ),
        pytest.param({"session_max_age": "0"}, "session_max_age", "positive", id="zero-duration"),
        pytest.param(
            {"session_refresh": "7d"}, "session_refresh", "shorter than", id="refresh-not-shorter"
        ),
        pytest.param(LIFETIME_UNDER_IDLE, "session_max_lifetime", "at least", id="lifetime-short"),
        pytest.param({"session_max_lifetime": "1d"}, "session_max_lifetime", "at least", id="1d"),
        pytest.param(
            {"session_refresh": "soon"}, "session_refresh", "seconds", id="refresh-not-duration"
        ),
        pytest.param({"cookie_secure": "maybe"}, "cookie_secure", "true or false", id="bad-bool"),
        pytest.param(
            {"cookie_samesite": "loose"},
            "cookie_samesite",
            "lax, strict, none",
            id="bad-samesite",
        ),
        pytest.param(
            {"cookie_samesite": "none", "cookie_secure": "false"},
            "cookie_samesite",
            "requires",
            id="samesite-none-insecure",
        ),
        pytest.param({"cookie_name": "qq gate"}, "cookie_name", "letters", id="bad-cookie-name"),
        pytest.param(
            {"cookie_name": "__Host-qqgate", "cookie_domain": "example.com"},
            "cookie_name",
            "cannot have a cookie_domain",
            id="host-prefix-with-domain",
        ),
        pytest.param(
            {"cookie_name": "__Host-qqgate", "cookie_secure": "false"},
            "cookie_name",
            "needs cookie_secure",
            id="host-prefix-not-secure",
        ),
        pytest.param(
            {"cookie_domain": "exa mple.com"}, "cookie_domain", "host name", id="bad-cookie-domain"
        ),
        pytest.param(
            {"public_paths": "static/"}, "public_paths", "below /", id="relative-public-path"
        ),
        pytest.param({"public_paths": "/"}, "public_paths", "below /", id="everything-public"),
        pytest.param(
            {"allowed_openids": "not<an>openid"},
            "allowed_openids",
            "not an openid",
            id="bad-openid",
        ),
        pytest.param({"openid_header": "X QQ"}, "openid_header", "header name", id="bad-header"),
        pytest.param({"scope": "get_user_info; drop"}, "scope", "comma-separated", id="bad-scope"),
        pytest.param({"app_secret": "x"}, "app_secret", "unknown key", id="typo-key"),
        pytest.param(
            {"upstream": "127.0.0.1:8080"}, "upstream", "http(s) URL", id="upstream-no-scheme"
        ),
        pytest.param(
            {"upstream": "http://127.0.0.1:8080/app"}, "upstream", "no path", id="upstream-path"
        ),
        pytest.param(
            {"upstream": "http://127.0.0.1:99999"}, "upstream", "valid URL", id="upstream-bad-port"
        ),
        pytest.param(
            {"upstream_timeout": "7200"}, "upstream_timeout", "at most 3600", id="upstream-timeout"
        ),
        pytest.param({"language": "fr"}, "language", "auto, zh, en", id="bad-language"),
        pytest.param({"log_format": "xml"}, "log_format", "text, json", id="bad-log-format"),
        pytest.param(
            {"templates_dir": "/no/such/dir"},
            "templates_dir",
            "not a directory",
            id="missing-templates",
        ),
    ],
)
def test_bad_config_names_the_key(overrides, key, fragment) -> None:
    with pytest.raises(ConfigError) as info:
        make_settings(**overrides)
    assert key in info.value.keys
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("http://127.0.0.1:8000/_qqgate/callback", id="ipv4-loopback"),
        pytest.param("http://localhost:8000/_qqgate/callback", id="localhost"),
        pytest.param("http://[::1]:8000/_qqgate/callback", id="ipv6-loopback"),
    ],
)
def test_plain_http_is_allowed_on_loopback(uri) -> None:
    assert make_settings(redirect_uri=uri).redirect_uri == uri


def test_custom_prefix_must_match_callback() -> None:
    settings = make_settings(prefix="/auth/", redirect_uri="https://a.example/auth/callback")
    assert settings.prefix == "/auth"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("[other]\napp_id = 1\n", "no \\[qqgate\\] section", id="no-section"),
        pytest.param("[qqgate\n", "not a valid INI", id="broken-ini"),
    ],
)
def test_broken_files_are_config_errors(tmp_path, text, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(write(tmp_path, text))


def test_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.ini")


def test_example_file_documents_every_key() -> None:
    from pathlib import Path

    from qqgate.config import KEYS

    text = (Path(__file__).parent.parent / "gate.ini.example").read_text(encoding="utf-8")
    for key in KEYS:
        assert f"\n{key} =" in text, key


def test_proxy_keys() -> None:
    settings = make_settings(
        upstream="http://127.0.0.1:8080/", upstream_timeout="30", preserve_host="false"
    )
    assert settings.upstream == "http://127.0.0.1:8080"
    assert settings.upstream_timeout == 30.0 and settings.preserve_host is False
    assert make_settings().upstream is None


BASE = {
    "app_id": APP_ID,
    "app_key": APP_KEY,
    "secret_key": SECRET,
    "redirect_uri": "https://app.example.com/_qqgate/callback",
}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("timeout", 0, id="timeout-zero"),
        pytest.param("timeout", 121.0, id="timeout-over-limit"),
        pytest.param("session_max_age", -1, id="negative-max-age"),
        pytest.param("upstream_timeout", -5, id="negative-upstream-timeout"),
        pytest.param("max_header_fields", 5, id="too-few-fields"),
        pytest.param("cookie_samesite", "sideways", id="bad-choice"),
        pytest.param("allowed_openids", frozenset({"not an openid!"}), id="bad-openid-in-a-set"),
        pytest.param("websocket_origins", ("https://a.example/path",), id="origin-with-a-path"),
    ],
)
def test_typed_values_pass_the_same_checks_as_text(key, value) -> None:
    """Settings given already typed (a PasteDeploy dict, a test, an embedding app) are parsed as
    their text would be: no value skips a check by arriving typed."""
    with pytest.raises(ConfigError) as error:
        settings_from_mapping({**BASE, key: value})
    assert error.value.keys == [key]


def test_typed_values_that_are_valid_are_kept() -> None:
    settings = settings_from_mapping(
        {
            **BASE,
            "timeout": 2.5,
            "session_max_age": 3600,
            "cookie_secure": False,
            "public_paths": ("/static/", "/healthz"),
            "allowed_openids": frozenset({"A" * 32}),
            "secret_key": [SECRET, "o" * 40],
        }
    )
    assert (settings.timeout, settings.session_max_age, settings.cookie_secure) == (
        2.5,
        3600,
        False,
    )
    assert settings.public_paths == ("/static/", "/healthz")
    assert settings.allowed_openids == frozenset({"A" * 32})
    assert settings.secret_keys == (SECRET, "o" * 40)


@pytest.mark.parametrize(
    ("given", "lifetime", "refresh"),
    [
        pytest.param({"session_max_age": "12h"}, 30 * 86400, 3 * 3600, id="short-idle"),
        pytest.param({"session_max_age": "60d"}, 60 * 86400, 86400, id="idle-over-30-days"),
        pytest.param(
            {"session_max_age": "2h", "session_refresh": "1h"}, 30 * 86400, 3600, id="refresh-given"
        ),
    ],
)
def test_session_times_follow_a_given_max_age(given, lifetime, refresh) -> None:
    # A config written before sliding sessions (session_max_age alone) keeps working.
    settings = make_settings(**given)
    assert (settings.session_max_lifetime, settings.session_refresh) == (lifetime, refresh)
