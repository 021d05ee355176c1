"""Logins are throttled per account and per address; the API is throttled, bulk image reads are not;
API tokens are stored as digests, expire, and are issued by `manage.py drf_create_token`."""

import binascii
import importlib
import io
import os
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.throttling import SimpleRateThrottle

from archive.ingest import ingest_upload
from archive.models import Study
from portal.authentication import issue_token
from tests.factories.dicom import dataset_bytes, make_ct_series

LOGIN = "/accounts/login/"


def log_in(client, username, password, address, **headers):
    return client.post(
        LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


def logged_in(client):
    return "_auth_user_id" in client.session


def fail_logins(client, usernames, addresses, times):
    """Wrong passwords, ``times`` in all; the one that reaches the limit is answered as a lockout."""
    for i in range(times):
        username, address = usernames[i % len(usernames)], addresses[i % len(addresses)]
        response = log_in(client, username, "wrong password", address)
        reaches_limit = i == times - 1 and times == settings.AXES_FAILURE_LIMIT
        assert response.status_code == (429 if reaches_limit else 200)


# ---------------------------------------------------------------------------
# Failed logins (django-axes)


@pytest.mark.django_db
def test_failed_logins_lock_the_account_from_any_address_even_with_the_right_password(
    client, reader, settings
):
    addresses = [f"10.0.0.{i}" for i in range(1, 10)]
    fail_logins(client, ["reader1"], addresses, settings.AXES_FAILURE_LIMIT)

    response = log_in(client, "reader1", "pw-reader1", "10.9.9.9")
    assert response.status_code == 429 and not logged_in(client)
    assert "Too many failed logins" in response.content.decode()
    assert int(response["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    assert 'name="password"' in response.content.decode()  # the login page, with the reason


@pytest.mark.django_db
def test_failed_logins_from_one_address_lock_that_address_for_every_account(
    client, reader, other_reader, settings
):
    guessed = [f"user{i}" for i in range(settings.AXES_FAILURE_LIMIT)]
    fail_logins(client, guessed, ["10.0.0.66"], settings.AXES_FAILURE_LIMIT)

    assert log_in(client, "reader2", "pw-reader2", "10.0.0.66").status_code == 429
    assert not logged_in(client)
    assert (
        log_in(client, "reader2", "pw-reader2", "10.0.0.67").status_code == 302
    )  # another address
    assert logged_in(client)


@pytest.mark.django_db
def test_a_locked_out_script_asking_for_json_gets_the_reason_as_json(client, reader, settings):
    fail_logins(client, ["reader1"], ["10.0.0.1"], settings.AXES_FAILURE_LIMIT)
    response = log_in(client, "reader1", "pw-reader1", "10.0.0.1", HTTP_ACCEPT="application/json")
    assert response.status_code == 429 and response["Content-Type"] == "application/json"
    assert "Too many failed logins" in response.json()["error"]


@pytest.mark.django_db
def test_a_successful_login_before_the_limit_clears_only_that_accounts_failures(
    client, reader, other_reader, settings
):
    limit = settings.AXES_FAILURE_LIMIT
    fail_logins(client, ["reader1"], ["10.0.0.1"], limit - 1)
    assert log_in(client, "reader1", "pw-reader1", "10.0.0.1").status_code == 302
    client.logout()
    fail_logins(client, ["reader1"], ["10.0.0.1"], limit - 1)  # counted from zero again
    assert log_in(client, "reader1", "pw-reader1", "10.0.0.1").status_code == 302
    client.logout()

    # Guesses at another account from this address stay counted after one's own login.
    fail_logins(client, ["reader2"], ["10.0.0.2"], limit - 1)
    assert log_in(client, "reader1", "pw-reader1", "10.0.0.2").status_code == 302
    client.logout()
    assert (
        log_in(client, "reader2", "wrong password", "10.0.0.2").status_code == 429
    )  # the limit-th
    assert log_in(client, "reader2", "pw-reader2", "10.0.0.3").status_code == 429


@pytest.mark.django_db
def test_an_administrator_unlocks_an_account_with_axes_reset_username(client, reader, settings):
    fail_logins(client, ["reader1"], ["10.0.0.1"], settings.AXES_FAILURE_LIMIT)
    assert log_in(client, "reader1", "pw-reader1", "10.0.0.2").status_code == 429
    call_command("axes_reset_username", "reader1", stdout=io.StringIO())
    assert log_in(client, "reader1", "pw-reader1", "10.0.0.2").status_code == 302


@pytest.mark.django_db
def test_the_lockout_counts_the_address_the_trusted_proxy_saw_not_one_the_client_sends(
    client, reader, settings
):
    # Without a trusted proxy, X-Forwarded-For is the client's own word: ignored.
    for i in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, f"user{i}", "wrong", "10.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    response = log_in(
        client, "reader1", "pw-reader1", "10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.200"
    )
    assert response.status_code == 429


# ---------------------------------------------------------------------------
# API throttles


@pytest.fixture
def user_rate(monkeypatch):
    """A low per-user API rate (DRF binds the rates to its throttle classes when it loads)."""
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"user": "5/minute", "anon": "5/minute"}
    )
    return 5


@pytest.fixture
def readable_study(reader):
    slices = make_ct_series(2, phase="CM")
    ingest_upload([(f"{i}.dcm", dataset_bytes(ds)) for i, ds in enumerate(slices)], reader)
    return Study.objects.get(), slices


@pytest.mark.django_db
def test_api_requests_above_the_users_rate_get_429_with_retry_after(
    client, reader, token_for, user_rate
):
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(reader)}"}
    for _ in range(user_rate):
        assert client.get("/api/v1/studies/", **auth).status_code == 200
    response = client.get("/api/v1/studies/", **auth)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()


@pytest.mark.django_db
def test_the_viewers_bursts_of_frames_metadata_and_instance_files_are_not_throttled(
    client, reader, token_for, user_rate, readable_study
):
    study, slices = readable_study
    auth = {"HTTP_AUTHORIZATION": f"Token {token_for(reader)}"}
    series = f"/dicomweb/studies/{study.study_instance_uid}/series/{slices[0].SeriesInstanceUID}"
    for _ in range(4 * user_rate):
        for ds in slices:
            instance = f"{series}/instances/{ds.SOPInstanceUID}"
            assert client.get(f"{instance}/frames/1", **auth).status_code == 200
            assert client.get(instance, HTTP_ACCEPT="application/dicom", **auth).status_code == 200
            assert (
                client.get(f"/api/v1/instances/{ds.SOPInstanceUID}/file/", **auth).status_code
                == 200
            )
        assert client.get(f"{series}/metadata", **auth).status_code == 200
    # ... and they did not use up the user's API requests.
    assert client.get("/api/v1/studies/", **auth).status_code == 200


# ---------------------------------------------------------------------------
# API tokens (django-rest-knox)


def studies(client, key):
    return client.get("/api/v1/studies/", HTTP_AUTHORIZATION=f"Token {key}")


def expires_in_days(token, days):
    return abs(token.expiry - timezone.now() - timedelta(days=days)) < timedelta(minutes=1)


@pytest.mark.django_db
def test_an_expired_token_is_refused_with_401_at_once(client, reader):
    token, key = AuthToken.objects.create(reader, expiry=timedelta(seconds=2))
    assert studies(client, key).status_code == 200  # remembered by this process now
    time.sleep(max(0.0, (token.expiry - timezone.now()).total_seconds()) + 0.05)
    response = studies(client, key)  # well within ACCESS_CACHE_SECONDS
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert not AuthToken.objects.filter(user=reader).exists()  # knox deletes it


@pytest.mark.django_db
def test_the_admin_shows_no_part_of_a_tokens_key(client, admin_user, reader):
    key = issue_token(reader)
    token = AuthToken.objects.get(user=reader)
    client.force_login(admin_user)
    listing = client.get("/admin/knox/authtoken/")
    form = client.get(f"/admin/knox/authtoken/{token.pk}/change/")
    assert listing.status_code == 200 and form.status_code == 200
    for page in (listing.content.decode(), form.content.decode()):
        assert "reader1" in page
        assert key[:8] not in page
    assert client.get("/admin/knox/authtoken/add/").status_code == 403  # issued by the command only


@pytest.mark.django_db
def test_a_command_issued_token_works_for_scripts_is_stored_as_a_digest_and_expires_as_asked(
    client, reader, settings
):
    out = io.StringIO()
    call_command("drf_create_token", "reader1", "--expires-days", "2", stdout=out)
    words = out.getvalue().split()
    assert words[:2] == ["Generated", "token"] and words[3:] == ["for", "user", "reader1"]
    key = words[2]  # as the README's script reads it: awk '{print $3}'
    assert studies(client, key).status_code == 200
    token = AuthToken.objects.get(user=reader)
    assert key not in {token.digest, token.token_key}
    assert (
        timedelta(days=2) - timedelta(minutes=1)
        < token.expiry - timezone.now()
        <= timedelta(days=2)
    )

    call_command("drf_create_token", "reader1", stdout=out)  # default expiry from the settings
    newest = AuthToken.objects.filter(user=reader).latest("created")
    assert expires_in_days(newest, settings.API_TOKEN_EXPIRES_DAYS)
    call_command("drf_create_token", "reader1", "--reset", "--expires-days", "0", stdout=out)
    assert list(AuthToken.objects.filter(user=reader).values_list("expiry", flat=True)) == [None]
    assert studies(client, key).status_code == 401  # --reset revoked the earlier tokens


@pytest.mark.django_db
def test_the_token_command_refuses_bad_input_and_issues_nothing(reader):
    with pytest.raises(CommandError, match="--expires-days is -1"):
        call_command("drf_create_token", "reader1", "--expires-days", "-1", stdout=io.StringIO())
    with pytest.raises(CommandError, match="user nobody does not exist"):
        call_command("drf_create_token", "nobody", stdout=io.StringIO())
    assert not AuthToken.objects.exists()


@pytest.mark.django_db
def test_plain_drf_tokens_of_an_existing_database_keep_working_after_the_migration(
    client, reader, settings
):
    key = binascii.hexlify(os.urandom(20)).decode()  # as rest_framework.authtoken made them
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, created timestamp with time zone, '
            "user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)", [key, timezone.now(), reader.pk]
        )
    migration = importlib.import_module("portal.migrations.0003_hash_drf_api_tokens")
    migration.hash_drf_tokens(apps, SimpleNamespace(connection=connection))  # the one thing it uses

    assert studies(client, key).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone()[0] == 0  # no plain key left
    token = AuthToken.objects.get(user=reader)
    assert key not in {token.digest, token.token_key}
    assert expires_in_days(token, settings.API_TOKEN_EXPIRES_DAYS)
