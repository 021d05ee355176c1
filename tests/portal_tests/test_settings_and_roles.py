"""Settings from the environment and the role groups."""

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import RequestFactory

from portal.roles import ROLE_CAPABILITIES, ensure_roles, user_roles
from tests.django_process import run_django


def test_portal_refuses_to_start_without_secret_key_unless_debug():
    refused = run_django({})
    assert refused.returncode != 0
    assert "SECRET_KEY is not set" in refused.stderr
    assert run_django({"DEBUG": "1"}).stdout.strip() == "started"
    assert run_django({"SECRET_KEY": "x" * 50, "DEID_SECRET": "y" * 50}).stdout.strip() == "started"


def test_portal_refuses_to_start_without_a_deid_secret_of_its_own_unless_debug():
    missing = run_django({"SECRET_KEY": "x" * 50})
    assert missing.returncode != 0 and "DEID_SECRET is not set" in missing.stderr
    same = run_django({"SECRET_KEY": "x" * 50, "DEID_SECRET": "x" * 50})
    assert same.returncode != 0 and "DEID_SECRET is the same as SECRET_KEY" in same.stderr
    code = "import django; django.setup(); from django.conf import settings; print(bool(settings.DEID_SECRET))"
    assert run_django({"DEBUG": "1"}, code).stdout.strip() == "True"


def test_database_and_broker_come_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL, settings.ALLOWED_HOSTS)"
    )
    shown = run_django(
        {
            "SECRET_KEY": "k",
            "DEID_SECRET": "d",
            "DATABASE_URL": "postgres://u@db:5432/x",
            "CELERY_BROKER_URL": "redis://r:6379/0",
            "ALLOWED_HOSTS": "a.org,b.org",
        },
        code,
    ).stdout
    assert "postgresql" in shown and "redis://r:6379/0" in shown and "['a.org', 'b.org']" in shown
    default = run_django(
        {"SECRET_KEY": "k", "DEID_SECRET": "d", "DATABASE_URL": "", "CELERY_BROKER_URL": ""}, code
    ).stdout
    assert "sqlite3" in default and "filesystem://" in default


def test_django_start_does_not_import_tensorflow():
    code = (
        "import django; django.setup(); import portal.urls, sys; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    assert run_django({"SECRET_KEY": "k", "DEID_SECRET": "d"}, code).stdout.strip() == "False False"


@pytest.mark.django_db
def test_roles_are_groups_with_their_capabilities(make_user):
    ensure_roles()
    for role, capabilities in ROLE_CAPABILITIES.items():
        group = Group.objects.get(name=role)
        assert set(group.permissions.values_list("codename", flat=True)) == set(capabilities)
    reader = make_user("r", "reader")
    assert reader.has_perm("portal.record_reader_calls") and not reader.has_perm(
        "portal.enter_pathology"
    )
    assert not reader.has_perm("portal.start_training")
    assert user_roles(make_user("a", "admin")) == {"admin"}


@pytest.mark.django_db
def test_demo_users_get_their_roles_and_printed_passwords(capsys, settings, tmp_path):
    settings.DEBUG, settings.VAR_DIR = True, tmp_path
    call_command("create_demo_users")
    printed = capsys.readouterr().out
    for name in ("admin", "coordinator", "reader1", "reader2", "reader3"):
        assert name in printed
    from django.contrib.auth import authenticate, get_user_model

    line = next(l for l in printed.splitlines() if l.strip().startswith("reader2 "))
    password = line.split()[1]
    # As the login page asks: with the request (the login lockout, django-axes, needs it).
    user = authenticate(
        RequestFactory().post("/accounts/login/"), username="reader2", password=password
    )
    assert user is not None and user_roles(user) == {"reader"}
    assert get_user_model().objects.get(username="admin").is_superuser


@pytest.mark.django_db
def test_create_demo_users_refuses_to_run_outside_debug_and_creates_nobody(settings, tmp_path):
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError

    settings.DEBUG, settings.VAR_DIR = False, tmp_path
    with pytest.raises(CommandError, match="only with DEBUG=1"):
        call_command("create_demo_users")
    assert not get_user_model().objects.exists() and not (tmp_path / "demo-logins.txt").exists()


@pytest.mark.django_db
def test_the_demo_logins_file_is_readable_by_its_owner_only(settings, tmp_path):
    settings.DEBUG, settings.VAR_DIR = True, tmp_path
    logins = tmp_path / "demo-logins.txt"
    logins.write_text("reader1 kept-password\n")
    logins.chmod(0o644)  # as an earlier version left it
    call_command("create_demo_users", stdout=io.StringIO())
    assert logins.stat().st_mode & 0o777 == 0o600
    assert "reader1 kept-password" in logins.read_text()
    logins.unlink()
    call_command("create_demo_users", stdout=io.StringIO())
    assert logins.stat().st_mode & 0o777 == 0o600


@pytest.mark.django_db
def test_token_authentication_works_for_scripts(reader, token_for, client):
    response = client.get("/api/v1/studies/", HTTP_AUTHORIZATION=f"Token {token_for(reader)}")
    assert response.status_code == 200
    assert client.get("/api/v1/studies/", HTTP_AUTHORIZATION="Token wrong").status_code == 401


@pytest.mark.django_db
def test_openapi_schema_and_login_page_render(client, reader):
    assert client.get("/api/schema/").status_code in (
        401,
        403,
    )  # the API's description is for users only
    assert client.get("/api/docs/").status_code in (401, 403)
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/").status_code == 302
    client.force_login(reader)
    assert client.get("/").status_code == 200
    assert client.get("/upload/").status_code == 200


@pytest.mark.django_db
def test_navigation_shows_each_role_its_pages(client, reader, coordinator, admin_user):
    from annotations.models import ReaderStudy

    ReaderStudy.objects.create(name="Pilot study")
    client.force_login(reader)
    page = client.get("/").content.decode()
    assert "/reading/" in page and "/models/" not in page and "Pilot study" not in page
    client.force_login(coordinator)
    page = client.get("/").content.decode()
    assert "/models/" not in page and "Pilot study" in page and "/comparison/" in page
    client.force_login(admin_user)
    assert "/models/" in client.get("/").content.decode()


@pytest.mark.django_db
def test_api_docs_are_for_logged_in_users_and_served_from_the_portal_not_a_cdn(client, reader):
    from django.contrib.staticfiles import finders

    client.force_login(reader)
    assert client.get("/api/schema/").status_code == 200
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    scripts = re.findall(r'src="(/static/[^"]+\.js)"', html)
    assert scripts and all("drf_spectacular_sidecar" in src for src in scripts)
    for src in scripts:  # every script the page needs is a static file of the portal
        assert finders.find(src.removeprefix("/static/")), src


# The production settings the README documents (section "Running in production").
PRODUCTION = {
    "SECRET_KEY": "k" * 20
    + "-production-secret-key-with-50-or-more-characters-and-variety-0123456789",
    "DEID_SECRET": "d" * 50,
    "ALLOWED_HOSTS": "portal.hospital.example",
    "HTTPS": "1",
    "SECURE_PROXY_SSL_HEADER": "1",
}


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    code = (
        "import sys, django; django.setup(); from django.core.management import call_command; "
        "call_command('check', deploy=True, fail_level='WARNING'); print('clean')"
    )
    result = run_django(
        {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}, code
    )
    assert result.stdout.strip().endswith("clean"), result.stderr[-3000:]
    proxy = run_django(
        PRODUCTION,
        "import django; django.setup(); from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)",
    )
    assert proxy.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", proxy.stderr[-2000:]
    # Without HTTPS the same check names what is missing.
    plain = run_django(
        {**PRODUCTION, "HTTPS": "", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}, code
    )
    assert plain.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in plain.stderr, check


@pytest.mark.django_db
def test_behind_a_tls_proxy_dicomweb_urls_are_https(client, reader, token_for, settings):
    from tests.factories.dicom import dataset_bytes, make_ct_dataset

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    ds = make_ct_dataset()
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + dataset_bytes(ds)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {  # what the TLS proxy forwards: the Host the browser asked for and the scheme
        "HTTP_AUTHORIZATION": f"Token {token_for(reader)}",
        "HTTP_HOST": "testserver",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_ACCEPT": "application/dicom+json",
    }
    stored = client.generic(
        "POST",
        "/dicomweb/studies",
        body,
        content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        **headers,
    )
    assert stored.status_code == 200
    assert stored.json()["00081190"]["Value"][0].startswith("https://testserver/dicomweb/studies/")
    metadata = client.get(f"/dicomweb/studies/{ds.StudyInstanceUID}/metadata", **headers).json()
    assert metadata[0]["7FE00010"]["BulkDataURI"].startswith("https://testserver/dicomweb/")
    # Without the proxy's header the same request is plain http.
    plain = client.get(
        f"/dicomweb/studies/{ds.StudyInstanceUID}/metadata",
        HTTP_AUTHORIZATION=f"Token {token_for(reader)}",
    ).json()
    assert plain[0]["7FE00010"]["BulkDataURI"].startswith("http://testserver/dicomweb/")


@pytest.mark.django_db
def test_passwords_are_checked_by_djangos_full_set_of_validators(make_user):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    user = make_user("anna.radiologist")
    weak = {
        "short-pw1": "too short",
        "anna.radiologist1": "too similar",
        "password1234": "too common",
        "918273645546372": "entirely numeric",
    }
    for password, reason in weak.items():
        with pytest.raises(ValidationError, match=reason):
            validate_password(password, user=user)
    validate_password("renal-cortex-enhances-first", user=user)


@pytest.mark.django_db
def test_a_browser_session_ends_after_the_idle_time_and_activity_extends_it_at_most_once_a_minute(
    client, reader, settings
):
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    client.force_login(reader)
    assert client.get("/").status_code == 200
    row = Session.objects.get(session_key=client.session.session_key)
    expiry = row.expire_date
    assert abs((expiry - timezone.now()).total_seconds() - settings.SESSION_COOKIE_AGE) < 120

    # Requests within the minute do not write the session again.
    assert client.get("/").status_code == 200
    assert Session.objects.get(pk=row.pk).expire_date == expiry

    # Seen more than a minute ago and about to expire: the next request moves the expiry forward.
    session = client.session
    session["_seen"] = 0
    session.save()
    Session.objects.filter(pk=row.pk).update(expire_date=timezone.now() + timedelta(seconds=30))
    assert client.get("/").status_code == 200
    extended = Session.objects.get(pk=row.pk).expire_date
    assert (extended - timezone.now()).total_seconds() > settings.SESSION_COOKIE_AGE - 120

    # Idle past the expiry: the session is over.
    Session.objects.filter(pk=row.pk).update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
