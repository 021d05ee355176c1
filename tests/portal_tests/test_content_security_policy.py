"""Every HTML page carries the Content-Security-Policy with a nonce of its own response, and
runs no script that neither comes from a file nor carries that nonce (README
"Content-Security-Policy"). The browser half (pages work under the policy) is in
tests/browser_tests/test_pages_under_the_policy.py."""

import re
from html.parser import HTMLParser

import pytest

from archive.ingest import ingest_upload
from tests.django_process import run_django
from tests.factories.dicom import dataset_bytes, make_ct_study
from tests.factories.reader_study import build_reader_study

pytestmark = pytest.mark.django_db

# <script type> values a browser runs (HTML "JavaScript MIME type essence match" or "module");
# data blocks such as type="application/json" (DRF's CSRF settings) are never run.
EXECUTABLE_TYPES = {"", "module", "text/javascript", "application/javascript"}


class ScriptTags(HTMLParser):
    """The attributes of each <script>, and the inline handlers (onchange=...) and javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.scripts = []
        self.inline_code = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append(dict(attrs))
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.inline_code.append(f"<{tag} {name}={value!r}>")


def policy_of(response):
    """The enforced policy as {directive: [sources]}."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{response.request['PATH_INFO']} has no Content-Security-Policy header"
    directives = (part.strip().split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def nonce_of(policy):
    nonces = [s[len("'nonce-") : -1] for s in policy["script-src"] if s.startswith("'nonce-")]
    assert len(nonces) == 1, policy["script-src"]
    return nonces[0]


def parsed(html):
    parser = ScriptTags()
    parser.feed(html)
    return parser


def executable_scripts(html):
    return [
        s for s in parsed(html).scripts if (s.get("type") or "").strip().lower() in EXECUTABLE_TYPES
    ]


@pytest.fixture
def pages(client, admin_user, settings):
    """(user or None, path) of each HTML page: reader pages, coordinator/admin pages, API docs, admin."""
    study = build_reader_study(n_lesions=16, n_readers=2, variants=("CM",), seed=4)
    reader_study, reader = study.reader_study, study.readers[0]
    ct = make_ct_study(n=2)  # series on the studies page: the coordinator's phase menus
    files = [
        (f"{phase}{i}.dcm", dataset_bytes(ds))
        for phase, slices in ct.items()
        for i, ds in enumerate(slices)
    ]
    assert ingest_upload(files, admin_user).status == "stored"
    case_uid = reader_study.cases.first().study.study_instance_uid
    return [
        (None, "/accounts/login/"),
        (admin_user, "/"),
        (reader, "/reading/"),
        (reader, f"/reading/{reader_study.pk}/"),
        (reader, f"/reading/{reader_study.pk}/{case_uid}/"),
        (admin_user, f"/studies/{case_uid}/"),
        (admin_user, "/upload/"),
        (admin_user, "/models/"),
        (admin_user, f"/reader-studies/{reader_study.pk}/comparison/"),
        (admin_user, "/api/docs/"),
        (admin_user, "/api/v1/"),
        (admin_user, "/admin/"),
        (admin_user, "/admin/annotations/readerstudy/"),
    ]


def get_page(client, user, path):
    if user is None:
        client.logout()
    else:
        client.force_login(user)
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response.status_code == 200, path
    assert response["Content-Type"].startswith("text/html"), path
    return response


def test_every_html_page_has_the_policy_with_a_fresh_nonce_and_no_script_without_it(client, pages):
    for user, path in pages:
        first, second = get_page(client, user, path), get_page(client, user, path)
        policy = policy_of(first)
        nonce = nonce_of(policy)
        assert re.fullmatch(r"[A-Za-z0-9+/]{22}==", nonce), nonce  # 16 random bytes, base64
        assert nonce_of(policy_of(second)) != nonce, f"{path}: the nonce is reused"
        scripts = executable_scripts(first.content.decode())
        unsafe = [s for s in scripts if not s.get("src") and s.get("nonce") != nonce]
        assert not unsafe, f"{path}: inline <script> without this response's nonce: {unsafe}"
        handlers = parsed(first.content.decode()).inline_code
        assert not handlers, (
            f"{path}: inline event handlers or javascript: URLs (never allowed): {handlers}"
        )


def test_the_policy_allows_only_the_portals_own_scripts_and_no_framing():
    from django.test import Client

    policy = policy_of(Client().get("/accounts/login/"))
    assert policy["default-src"] == ["'self'"]
    assert set(policy["script-src"]) - {f"'nonce-{nonce_of(policy)}'"} == {"'self'"}
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["worker-src"] == ["'self'", "blob:"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert "report-uri" not in policy


def test_the_models_and_comparison_pages_load_their_script_from_the_bundle(
    client, admin_user, settings
):
    study = build_reader_study(n_lesions=16, n_readers=2, variants=("CM",), seed=4)
    settings.EVALUATION_SYNC_MAX_RATINGS = 10  # the page polls a worker: the poll is comparison.js
    comparison = get_page(
        client, admin_user, f"/reader-studies/{study.reader_study.pk}/comparison/"
    )
    assert "Computing…" in comparison.content.decode()
    sources = [s["src"] for s in executable_scripts(comparison.content.decode())]
    assert sources == ["/static/portal/build/comparison.js"]
    status_url = f"/reader-studies/{study.reader_study.pk}/comparison/status.json?"
    assert f'data-status-url="{status_url}' in comparison.content.decode()
    models = get_page(client, admin_user, "/models/")
    sources = [s["src"] for s in executable_scripts(models.content.decode())]
    assert sources == ["/static/portal/build/models.js"]


def test_the_api_docs_start_swagger_ui_from_a_script_file(client, admin_user):
    page = get_page(client, admin_user, "/api/docs/")
    sources = [s["src"] for s in executable_scripts(page.content.decode())]
    start_up = [src for src in sources if src.startswith("/api/docs/?")]
    assert len(start_up) == 1, sources
    script = client.get(start_up[0].replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert (
        "SwaggerUIBundle(" in script.content.decode() and "/api/schema/" in script.content.decode()
    )


def test_a_report_uri_from_the_environment_is_added_to_the_policy():
    code = (
        "import django; django.setup(); from django.test import Client; "
        "print(Client().get('/accounts/login/').headers['Content-Security-Policy'])"
    )
    env = {"DEBUG": "1", "ALLOWED_HOSTS": "testserver"}
    assert "report-uri" not in run_django(env, code).stdout
    reported = run_django({**env, "CSP_REPORT_URI": "https://siem.hospital.example/csp"}, code)
    header = reported.stdout.strip()
    assert header.endswith("; report-uri https://siem.hospital.example/csp"), reported.stderr[
        -2000:
    ]
