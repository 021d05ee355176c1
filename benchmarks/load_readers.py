"""Locust users of ``benchmarks/load.py``: readers who open cases and save ROIs and calls, and an uploader.

Started by ``load.py`` (``locust -f benchmarks/load_readers.py --headless ...``) with
``LOAD_CONFIG`` naming a JSON file that holds the readers' tokens, the cases, the
think time and where to write the client's log; not meant to be run by hand.

A reader's case, as the case page reads it:

1. "open a case": QIDO-RS series of the study, then for each of the four phases at
   once (as the viewer's four panels do) the series metadata (WADO-RS) and its
   middle frame; timed from the first request to the last byte of the last frame,
   reported as the request "open a case" (type CASE).
2. For every lesion of the case: an ROI (an ellipse near the reference ROI's, new
   points each time) and the reader's call, saved as the page saves them: autosave
   (unlocked), then locked. A transient failure (no answer, 429 or 5xx) is tried
   again after 1, 3, 8 and 15 s, as ``frontend/src/saving.js`` does. A call already
   locked by this reader is not saved again.

Every save that the server confirmed (and every one it did not) is written to the
client's log (JSON lines), which ``load.py`` checks against the database afterwards.
"""

from __future__ import annotations

import io
import json
import os
import random
import secrets
import time
from pathlib import Path

import gevent
import pydicom
from locust import FastHttpUser, events, task
from pydicom.uid import generate_uid

CONFIG = json.loads(Path(os.environ["LOAD_CONFIG"]).read_text())
LOG = open(CONFIG["log"], "a", buffering=1)  # one JSON object per line, written whole
RETRY_DELAYS_S = (1, 3, 8, 15)  # frontend/src/saving.js RETRY_DELAYS_MS
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"'
_readers = iter(CONFIG["readers"])


def log(**entry):
    LOG.write(json.dumps({"t": time.time(), **entry}) + "\n")


@events.quitting.add_listener
def _close_log(**kwargs):
    LOG.flush()


def transient(status):
    return status == 0 or status == 429 or status >= 500


class Reader(FastHttpUser):
    """One reader with their own token, reading the reader study's cases from a random place in the list."""

    concurrency = 4  # the four phases at once
    network_timeout = connection_timeout = 120.0

    def wait_time(self):
        think = CONFIG["think_s"]
        return random.uniform(*think) if think else 0

    def on_start(self):
        identity = next(_readers)
        self.username = identity["username"]
        self.headers = {
            "Authorization": f"Token {identity['token']}",
            "Accept-Encoding": "identity",
        }
        self.rng = random.Random(f"{CONFIG['seed']}-{self.username}")
        self.position = self.rng.randrange(len(CONFIG["cases"]))
        self.locked = set()
        if CONFIG["think_s"]:  # readers do not all start their first case in the same second
            gevent.sleep(self.rng.uniform(0, CONFIG["think_s"][0]))

    @task
    def read_a_case(self):
        case = CONFIG["cases"][self.position % len(CONFIG["cases"])]
        self.position += 1
        if self.open_case(case):
            for lesion in case["lesions"]:
                self.save_roi(lesion)
                self.save_call(lesion)

    def get(self, url, name, accept):
        with self.client.get(
            url, headers={**self.headers, "Accept": accept}, name=name, catch_response=True
        ) as answer:
            ok = answer.status_code == 200 and bool(answer.content)
            if not ok:
                answer.failure(f"{answer.status_code}: {(answer.text or '')[:200]}")
            return ok, len(answer.content or b"")

    def open_phase(self, study, series):
        base = f"/dicomweb/studies/{study}/series/{series['uid']}"
        ok, size = self.get(f"{base}/metadata", "metadata of a series", "application/dicom+json")
        if not ok:
            return False, size
        frame_ok, frame_size = self.get(
            f"{base}/instances/{series['middle']}/frames/1",
            "middle frame of a series",
            FRAME_ACCEPT,
        )
        return frame_ok, size + frame_size

    def open_case(self, case):
        start = time.perf_counter()
        ok, size = self.get(
            f"/dicomweb/studies/{case['study']}/series",
            "QIDO series of a study",
            "application/dicom+json",
        )
        if ok:
            phases = [
                gevent.spawn(self.open_phase, case["study"], s) for s in case["series"].values()
            ]
            gevent.joinall(phases)
            results = [p.value if p.successful() else (False, 0) for p in phases]
            ok = all(r[0] for r in results)
            size += sum(r[1] for r in results)
        elapsed_ms = 1000 * (time.perf_counter() - start)
        events.request.fire(
            request_type="CASE",
            name="open a case",
            response_time=elapsed_ms,
            response_length=size,
            exception=None if ok else RuntimeError("a request of the case failed"),
            context={},
        )
        log(kind="case", reader=self.username, study=case["study"], ms=elapsed_ms, ok=ok)
        return ok

    def post_json(self, url, body, name):
        """POST, retrying transient failures as the page does: status, answer JSON (or None), attempts."""
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None), start=1):
            with self.client.post(
                url,
                data=json.dumps(body),
                name=name,
                catch_response=True,
                headers={
                    **self.headers,
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            ) as answer:
                status = answer.status_code or 0
                if 200 <= status < 300:
                    return status, answer.json(), attempt
                answer.failure(f"{status}: {(answer.text or '')[:200]}")
            if delay is None or not transient(status):
                return status, None, attempt
            gevent.sleep(delay)

    def save_roi(self, lesion):
        roi = lesion["roi"]
        dx, dy = self.rng.uniform(-2, 2), self.rng.uniform(-2, 2)
        points = [[round(x + dx, 4), round(y + dy, 4), z] for x, y, z in roi["points"]]
        body = {
            "lesion": lesion["id"],
            "series": roi["series"],
            "sop_instance_uid": roi["sop_instance_uid"],
            "tool": roi["tool"],
            "points": points,
        }
        status, answer, attempts = self.post_json("/api/v1/rois/", body, "save an ROI")
        log(
            kind="roi",
            reader=self.username,
            lesion=lesion["id"],
            points=points,
            status=status,
            id=answer["id"] if answer else None,
            attempts=attempts,
        )

    def save_call(self, lesion):
        if lesion["id"] in self.locked:
            return
        probability = self.rng.randrange(101)
        for lock in (False, True):  # the autosave, then the locked call
            body = {
                "reader_study": CONFIG["reader_study"],
                "lesion": lesion["id"],
                "malignant": probability >= 50,
                "probability": probability,
                "lock": lock,
            }
            status, answer, attempts = self.post_json("/api/v1/calls/", body, "save a call")
            log(
                kind="call",
                reader=self.username,
                lesion=lesion["id"],
                probability=probability,
                lock=lock,
                status=status,
                id=answer["id"] if answer else None,
                attempts=attempts,
            )
            if answer is None:
                return
        self.locked.add(lesion["id"])


class Uploader(FastHttpUser):
    """Uploads copies of the cohort's studies (new UIDs, same pixels) in batches, one batch per wait."""

    fixed_count = (
        1  # load.py names this class on locust's command line only when it wants an uploader
    )
    network_timeout = connection_timeout = 300.0

    def wait_time(self):
        return CONFIG["uploader"]["interval_s"]

    def on_start(self):
        self.headers = {"Authorization": f"Token {CONFIG['uploader']['token']}"}
        self.pending = []
        self.sources = list(CONFIG["uploader"]["studies"])

    def next_batch(self):
        if not self.pending:
            source = self.sources.pop(0)
            self.sources.append(source)
            study_uid, series_uids = generate_uid(), {}
            for path in source:
                ds = pydicom.dcmread(path)
                ds.StudyInstanceUID = study_uid
                ds.SeriesInstanceUID = series_uids.setdefault(ds.SeriesInstanceUID, generate_uid())
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                self.pending.append((Path(path).name, buffer.getvalue()))
        batch, self.pending = (
            self.pending[: CONFIG["uploader"]["batch"]],
            self.pending[CONFIG["uploader"]["batch"] :],
        )
        return batch

    @task
    def upload(self):
        batch = self.next_batch()
        boundary = secrets.token_hex(12)
        body = (
            b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                f"Content-Type: application/dicom\r\n\r\n".encode()
                + data
                + b"\r\n"
                for name, data in batch
            )
            + f"--{boundary}--\r\n".encode()
        )
        with self.client.post(
            "/api/v1/uploads/",
            data=body,
            name="upload a batch",
            catch_response=True,
            headers={**self.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        ) as answer:
            if answer.status_code not in (200, 201):
                answer.failure(f"{answer.status_code}: {(answer.text or '')[:200]}")
            stored = answer.json().get("stored") if answer.status_code in (200, 201) else None
        log(kind="upload", files=len(batch), status=answer.status_code, stored=stored)
