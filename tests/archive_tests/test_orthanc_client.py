"""A second, independent DICOMweb client: Orthanc's DICOMweb plugin talking to the portal.

Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) runs as a subprocess with the
portal's live server configured as a remote DICOMweb server (token authentication).
Through Orthanc's REST API it queries the portal (QIDO-RS), retrieves a whole study
into its own store (WADO-RS) and sends a study to the portal (STOW-RS); the UIDs and
pixel data on both sides must agree. Without Orthanc the tests skip, or fail when
``REQUIRE_SERVICES=1``.
"""

import io
import json
import subprocess
import time
import uuid
from pathlib import Path

import pydicom
import pytest
import requests

from archive.ingest import ingest_upload
from archive.models import Instance, Study
from benchmarks.processes import free_port
from tests.conftest import service_missing
from tests.factories.dicom import dataset_bytes, make_ct_study

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


class OrthancServer:
    """An Orthanc process and a ``requests`` session on its REST API."""

    def __init__(self, url: str, process: subprocess.Popen, log_path: Path):
        self.url, self.process, self.log_path = url, process, log_path
        self.session = requests.Session()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url + path, timeout=60, **kwargs)

    def post(self, path: str, body, **kwargs) -> requests.Response:
        data = json.dumps(body) if not isinstance(body, bytes) else body
        return self.session.post(self.url + path, data=data, timeout=60, **kwargs)

    def ok_json(self, response: requests.Response):
        assert response.ok, (
            f"{response.request.method} {response.url}: {response.status_code} {response.text[:500]}\n{self.log()}"
        )
        return response.json()

    def instance_files(self) -> dict[str, pydicom.Dataset]:
        """SOPInstanceUID -> the Part-10 file Orthanc stored, parsed."""
        files = {}
        for orthanc_id in self.ok_json(self.get("/instances")):
            response = self.get(f"/instances/{orthanc_id}/file")
            assert response.ok, response.text
            ds = pydicom.dcmread(io.BytesIO(response.content))
            files[ds.SOPInstanceUID] = ds
        return files


@pytest.fixture
def portal_token(coordinator, token_for):
    return token_for(coordinator)


@pytest.fixture
def orthanc(tmp_path, live_server, portal_token):
    """Orthanc with the portal as DICOMweb server ``portal``; killed at teardown."""
    missing = [str(p) for p in (ORTHANC, DICOMWEB_PLUGIN) if not p.exists()]
    if missing:
        service_missing(
            f"{', '.join(missing)} missing: apt-get install -y orthanc orthanc-dicomweb"
        )
    port = free_port()
    (tmp_path / "orthanc-db").mkdir()
    config = {
        "Name": "portal-interop-test",
        "StorageDirectory": str(tmp_path / "orthanc-db"),
        "IndexDirectory": str(tmp_path / "orthanc-db"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpCompressionEnabled": False,
        "HttpTimeout": 60,
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": False,
            "Servers": {
                "portal": {
                    "Url": f"{live_server.url}/dicomweb/",
                    "HttpHeaders": {"Authorization": f"Token {portal_token}"},
                    # Django's test server (WSGI) reads no chunked request body: send lengths.
                    "ChunkedTransfers": False,
                },
            },
        },
    }
    config_path = tmp_path / "orthanc.json"
    config_path.write_text(json.dumps(config))
    log_path = tmp_path / "orthanc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(ORTHANC), str(config_path)], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    server = OrthancServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"Orthanc exited with {process.returncode}:\n{server.log()}")
            try:
                if server.session.get(server.url + "/system", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Orthanc did not answer within 30 s:\n{server.log()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _value(answer: dict, tag: str) -> str | None:
    """One attribute of a QIDO answer as Orthanc's ``/qido`` returns it (its own JSON: a value, not a list)."""
    value = answer.get(tag, {}).get("Value")
    return str(value[0] if isinstance(value, list) else value) if value is not None else None


def _portal_files(study_uid: str) -> dict[str, pydicom.Dataset]:
    files = {}
    for instance in Instance.objects.filter(series__study__study_instance_uid=study_uid):
        with instance.file.open("rb") as handle:
            files[instance.sop_instance_uid] = pydicom.dcmread(io.BytesIO(handle.read()))
    return files


def _assert_same_instances(ours: dict[str, pydicom.Dataset], theirs: dict[str, pydicom.Dataset]):
    assert set(ours) == set(theirs)
    for uid, ds in ours.items():
        other = theirs[uid]
        for keyword in (
            "SOPClassUID",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "FrameOfReferenceUID",
            "PatientID",
        ):
            assert other.get(keyword) == ds.get(keyword), (uid, keyword)
        assert other.PixelData == ds.PixelData, uid
        assert (other.pixel_array == ds.pixel_array).all(), uid


@pytest.mark.django_db(transaction=True)
def test_orthanc_finds_and_retrieves_a_study_of_the_portal_with_the_same_uids_and_pixels(
    orthanc, coordinator
):
    study = make_ct_study(n=3)
    datasets = [ds for slices in study.values() for ds in slices]
    report = ingest_upload(
        [(f"IM{i:04d}.dcm", dataset_bytes(ds)) for i, ds in enumerate(datasets)], coordinator
    )
    assert report.status == "stored"
    study_uid = datasets[0].StudyInstanceUID

    found = orthanc.ok_json(
        orthanc.post(
            "/dicom-web/servers/portal/qido",
            {"Uri": "/studies", "Arguments": {"PatientID": "SRM-0001"}},
        )
    )
    assert [_value(s, "0020000D") for s in found] == [study_uid]
    # Orthanc's /qido drops IS values given as JSON numbers (PS3.18 F.2.3), even its own
    # server's: the count is read from the raw answer that /get passes through.
    raw = orthanc.ok_json(
        orthanc.post(
            "/dicom-web/servers/portal/get",
            {"Uri": "/studies", "Arguments": {"StudyInstanceUID": study_uid}},
        )
    )
    assert raw[0]["00201208"]["Value"] == [len(datasets)]  # NumberOfStudyRelatedInstances
    series = orthanc.ok_json(
        orthanc.post("/dicom-web/servers/portal/qido", {"Uri": f"/studies/{study_uid}/series"})
    )
    assert {_value(s, "0020000E") for s in series} == {
        slices[0].SeriesInstanceUID for slices in study.values()
    }

    orthanc.ok_json(
        orthanc.post("/dicom-web/servers/portal/retrieve", {"Resources": [{"Study": study_uid}]})
    )
    _assert_same_instances(_portal_files(study_uid), orthanc.instance_files())


@pytest.mark.django_db(transaction=True)
def test_orthanc_sends_a_study_to_the_portal_with_stow_and_the_portal_stores_the_same_uids_and_pixels(
    orthanc,
):
    study = make_ct_study(n=3, PatientID="SRM-0002", PatientName="SRM-0002")
    datasets = [ds for slices in study.values() for ds in slices]
    for ds in datasets:
        orthanc.ok_json(
            orthanc.post(
                "/instances", dataset_bytes(ds), headers={"Content-Type": "application/dicom"}
            )
        )
    [orthanc_study] = orthanc.ok_json(orthanc.get("/studies"))

    orthanc.ok_json(
        orthanc.post(
            "/dicom-web/servers/portal/stow", {"Resources": [orthanc_study], "Synchronous": True}
        )
    )
    study_uid = datasets[0].StudyInstanceUID
    assert Study.objects.filter(study_instance_uid=study_uid).exists()
    _assert_same_instances(orthanc.instance_files(), _portal_files(study_uid))


@pytest.mark.django_db(transaction=True)
def test_an_instance_stowed_without_preamble_or_file_meta_reaches_orthanc_as_the_same_dataset(
    orthanc, live_server, portal_token
):
    ds = make_ct_study(n=1, phases=("NC",))["NC"][0]
    bare = io.BytesIO()
    pydicom.dcmwrite(
        bare, pydicom.Dataset(ds), enforce_file_format=False, implicit_vr=False, little_endian=True
    )
    assert bare.getvalue()[128:132] != b"DICM"
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + bare.getvalue()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    stored = requests.post(
        f"{live_server.url}/dicomweb/studies",
        data=body,
        timeout=60,
        headers={
            "Authorization": f"Token {portal_token}",
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        },
    )
    assert stored.status_code == 200, stored.text

    orthanc.ok_json(
        orthanc.post(
            "/dicom-web/servers/portal/retrieve", {"Resources": [{"Study": ds.StudyInstanceUID}]}
        )
    )
    _assert_same_instances({ds.SOPInstanceUID: ds}, orthanc.instance_files())
