"""What a careful shop expects of a deployment: the documented production settings pass
Django's deploy checks, start-up refuses missing or malformed keys, and the admin sends a
Content-Security-Policy that its own pages keep to, checked in a real browser."""

import importlib.util
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from django.test import Client, override_settings
from django.urls import reverse

from catalog.models import Outlet
from channels.models import Channel
from omni.csp import ADMIN_POLICY, HEADER, INLINE_HANDLERS, source_hash
from synclogs.models import SyncLog

BASE_DIR = Path(settings.BASE_DIR)
SETTINGS_FILE = BASE_DIR / "omni" / "settings.py"
CHROMIUM = Path("/usr/bin/chromium")
KEY_VARIABLE = "OMNI_CREDENTIALS_KEYS"


def documented_production_env() -> dict[str, str]:
    """The variables README.md lists under "Production settings", placeholders filled in."""
    readme = (BASE_DIR / "README.md").read_text()
    block = readme.split("**Production settings.**", 1)[1].split("```sh\n", 1)[1]
    filled = {"SECRET_KEY": get_random_secret_key(), KEY_VARIABLE: Fernet.generate_key().decode()}
    env = {}
    for line in block.split("```", 1)[0].splitlines():
        name, _, value = line.partition("=")
        value = value.strip().strip('"')
        env[name] = filled[name] if value.startswith("<") else value
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """manage.py in a fresh process with only `env` (and PATH) set."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "omni.settings", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def load_settings(monkeypatch, **env: str) -> dict:
    """omni/settings.py executed afresh with exactly these variables."""
    for name in [
        "DEBUG",
        "SECRET_KEY",
        KEY_VARIABLE,
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
    ]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SETTINGS_FILE))


# --- production settings ---------------------------------------------------------------------


def test_the_documented_production_settings_pass_check_deploy():
    env = documented_production_env()
    assert {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", KEY_VARIABLE} <= env.keys()

    checked = manage("check", "--deploy", "--fail-level", "WARNING", env=env)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout

    # and the check is live: leaving out the HTTPS redirect is reported
    without_redirect = {k: v for k, v in env.items() if k != "SECURE_SSL_REDIRECT"}
    warned = manage("check", "--deploy", "--fail-level", "WARNING", env=without_redirect)
    assert warned.returncode != 0
    assert "security.W008" in warned.stderr + warned.stdout


def test_a_malformed_key_stops_start_up_naming_the_variable_not_the_key():
    good, bad = Fernet.generate_key().decode(), "not-a-fernet-key-but-a-secret-all-the-same"
    env = {**documented_production_env(), KEY_VARIABLE: f"{good},{bad}"}

    started = manage("check", env=env)

    assert started.returncode != 0
    assert f"{KEY_VARIABLE}: key 2 of 2 is not a Fernet key" in started.stderr
    assert "Fernet.generate_key()" in started.stderr
    assert bad not in started.stderr
    assert good not in started.stderr


def test_production_needs_a_credentials_key(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match=f"{KEY_VARIABLE} must be set when DEBUG"):
        load_settings(monkeypatch, DEBUG="false", SECRET_KEY=get_random_secret_key())


def test_debugging_without_keys_uses_one_derived_from_the_secret_key(monkeypatch):
    first = load_settings(monkeypatch, DEBUG="true", SECRET_KEY="one")[KEY_VARIABLE]
    again = load_settings(monkeypatch, DEBUG="true", SECRET_KEY="one")[KEY_VARIABLE]
    other = load_settings(monkeypatch, DEBUG="true", SECRET_KEY="two")[KEY_VARIABLE]

    assert first == again != other
    assert Fernet(first[0]).decrypt(Fernet(first[0]).encrypt(b"x")) == b"x"
    given = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    chosen = load_settings(monkeypatch, DEBUG="true", **{KEY_VARIABLE: " , ".join(given)})
    assert chosen[KEY_VARIABLE] == given


def test_the_proxy_header_is_read_as_django_wants_it(monkeypatch):
    loaded = load_settings(
        monkeypatch, DEBUG="true", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https"
    )
    assert loaded["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    with pytest.raises(ImproperlyConfigured, match="SECURE_PROXY_SSL_HEADER must look like"):
        load_settings(monkeypatch, DEBUG="true", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")


@pytest.mark.django_db
def test_the_https_redirect_spares_the_health_probe():
    with override_settings(SECURE_SSL_REDIRECT=True):
        client = Client()
        assert client.get("/api/health").status_code == 200
        redirected = client.get("/admin/login/")
    assert redirected.status_code == 301
    assert redirected["Location"].startswith("https://")


# --- Content-Security-Policy -----------------------------------------------------------------


@pytest.mark.django_db
def test_admin_pages_carry_the_policy_and_the_api_does_not(admin_client):
    page = admin_client.get(reverse("admin:index"))
    login = Client().get(reverse("admin:login"))
    api = Client().get("/api/health")

    for response in (page, login):
        policy = response[HEADER]
        assert "script-src 'self' 'unsafe-hashes'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert HEADER not in api


def test_every_inline_script_in_the_templates_is_allowed_by_the_policy():
    handler = re.compile(r"""\son[a-z]+\s*=\s*(["'])(.*?)\1""", re.S)
    inline_script = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
    found = set()
    for template in (BASE_DIR / "templates").rglob("*.html"):
        text = template.read_text()
        found |= {code for _, code in handler.findall(text)}
        assert not inline_script.search(text), f"{template}: move the script to a static file"
    assert found == set(INLINE_HANDLERS), "list each inline handler in omni/csp.py"
    assert {source_hash(code) for code in found} <= set(ADMIN_POLICY["script-src"])


def _browser_missing() -> str:
    if not CHROMIUM.exists():
        return "needs Debian's chromium (apt-get install -y chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "needs playwright (pip install -e '.[dev]')"
    return ""


RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`));
"""


@pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "-")
def test_admin_pages_break_no_rule_of_their_policy_in_chromium(live_server, admin_user):
    # given: two channels and some sync log rows, so the tab picker, badges and chart render
    outlet = Outlet.objects.create(code="jkt", name="Jakarta")
    channels = [
        Channel.objects.create(kind="shopee", name=name, order_outlet=outlet, credentials=creds)
        for name, creds in [("Shopee A", {"partner_id": 1}), ("Shopee B", {"partner_id": 2})]
    ]
    for number, status in [("1001", SyncLog.Status.OK), ("1002", SyncLog.Status.CONFLICT)]:
        SyncLog.objects.create(
            channel=channels[0],
            order_number=number,
            action=SyncLog.Action.CREATE_ORDER,
            status=status,
            origin=SyncLog.Origin.MANUAL,
            message="logged",
        )
    pages = [
        reverse("admin:index"),
        reverse("admin:channels_channel_changelist"),
        reverse("admin:channels_channel_change", args=[channels[0].pk]),
        reverse("admin:synclogs_synclog_changelist"),
        reverse("admin:synclogs_report"),
        reverse("admin:catalog_product_add"),
    ]
    tab = reverse("admin:channels_soldinchannel_changelist") + f"?channel={channels[0].pk}"
    from playwright.sync_api import sync_playwright

    seen: dict[str, list[str]] = {}
    console: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda message: console.append(message.text))
        # when: staff log in and open each page
        page.goto(live_server.url + reverse("admin:login"))
        page.fill("#id_username", "admin")
        page.fill("#id_password", "password")
        with page.expect_navigation():
            page.click("input[type=submit]")
        for path in pages:
            page.goto(live_server.url + path, wait_until="networkidle")
            seen[path] = page.evaluate("window.__cspViolations")
        # and pick another channel on a product tab (the one inline handler)
        page.goto(live_server.url + tab, wait_until="networkidle")
        with page.expect_navigation():
            page.select_option("#omni-channel", str(channels[1].pk))
        picked = page.url
        seen[tab] = page.evaluate("window.__cspViolations")
        reported = [line for line in console if "Content Security Policy" in line]
        # and, as a control, an injected inline script is refused and reported
        page.evaluate(
            """() => { const s = document.createElement("script");
                       s.textContent = "window.__injected = true"; document.body.append(s); }"""
        )
        page.wait_for_function("window.__cspViolations.length > 0")
        injected = page.evaluate("window.__injected === true")
        browser.close()

    # then: no page broke a rule, the picker worked, and the injected script never ran
    assert seen == {path: [] for path in [*pages, tab]}
    assert reported == []
    assert picked.endswith(f"?channel={channels[1].pk}")
    assert injected is False
