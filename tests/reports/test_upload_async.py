"""Uploads are stored and answered at once, parsed by the worker on the `ingest` queue; the
upload's page follows each file (issue 13: two pathological files in one upload used to hold a
request past gunicorn's 30 s timeout)."""

import gzip
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from domains.models import Domain, Membership, Role
from reports import tasks, uploads
from reports.models import AggregateReport, InputStatus, RawInput, UploadFile
from reports.parsing import unpack
from tests.conftest import client_for, make_user

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reports"
NICE_INPUT = FIXTURES / "aggregate" / "parsedmarc__nice-input.xml.gz"  # example.com, 20 / 3047
FRAGMENT = {"X-Mailsec-Fragment": "1"}
# The input: elements by the million in <feedback>, ~100 kB gzipped.
BOMB = gzip.compress(b"<feedback>" + b"<x/>" * 25_000_000 + b"</feedback>", 6)


@pytest.fixture
def queued(monkeypatch):
    """The file ids handed to the ingest queue: no worker runs here."""
    calls = []
    monkeypatch.setattr(tasks.parse_upload_file, "delay", calls.append)
    return calls


def post(client, *files):
    return client.post("/reports/upload/", {"files": list(files)})


def test_an_upload_is_stored_and_answered_without_parsing(
    bob, acme, queued, django_capture_on_commit_callbacks
):
    Domain.objects.create(organization=acme, name="example.com")
    client = client_for(bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(
            client,
            SimpleUploadedFile("nice.xml.gz", NICE_INPUT.read_bytes()),
            SimpleUploadedFile("bomb.xml.gz", BOMB),
        )
    files = list(UploadFile.objects.order_by("pk"))
    assert response.status_code == 302
    assert response["Location"] == f"/reports/upload/{files[0].upload_id}/"
    assert queued == [file.pk for file in files]
    assert [(f.name, f.state) for f in files] == [
        ("nice.xml.gz", "queued"),
        ("bomb.xml.gz", "queued"),
    ]
    assert not AggregateReport.objects.exists()  # nothing parsed in the request
    assert all(
        f.raw.status == InputStatus.REFUSED and f.raw.reason == "not parsed yet" for f in files
    )
    assert {f.raw.organization_id for f in files} == {acme.pk}  # the uploader's team's inputs

    page = client.get(response["Location"]).content.decode()
    assert f'data-poll="{response["Location"]}"' in page
    assert "2 of 2 files still to read" in page

    # The worker's part, one file at a time; the page's fragment follows.
    uploads.parse(files[0].pk)
    fragment = client.get(response["Location"], headers=FRAGMENT).content.decode()
    assert fragment.strip().startswith('<div id="upload-status-')
    assert "1 of 2 files still to read: 1 imported, 0 duplicates, 0 invalid" in fragment
    assert "data-poll" in fragment
    uploads.parse(files[1].pk)
    fragment = client.get(response["Location"], headers=FRAGMENT).content.decode()
    assert "data-poll" not in fragment
    assert "All 2 files read: 1 imported, 0 duplicates, 1 invalid" in fragment
    assert "more than 1000 elements in &lt;feedback&gt; outside any &lt;record&gt;" in fragment
    assert AggregateReport.objects.get().organization_id == acme.pk


def test_another_teams_upload_is_not_found(bob, globex, queued):
    carol = make_user("carol")
    Membership.objects.create(organization=globex, user=carol, role=Role.OWNER)
    response = post(client_for(bob), SimpleUploadedFile("nice.xml.gz", NICE_INPUT.read_bytes()))
    assert client_for(carol).get(response["Location"]).status_code == 404
    assert client_for(bob).get(response["Location"]).status_code == 200


def test_an_input_refused_before_is_not_parsed_again(bob, queued, monkeypatch):
    client = client_for(bob)
    first = post(client, SimpleUploadedFile("bomb.xml.gz", BOMB))
    uploads.parse(UploadFile.objects.get().pk)
    assert RawInput.objects.get().status == InputStatus.REFUSED

    def never(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(unpack, "payloads", never)
    second = post(client, SimpleUploadedFile("same-bytes.gz", BOMB))
    assert second["Location"] != first["Location"]
    file = UploadFile.objects.get(name="same-bytes.gz")
    assert uploads.parse(file.pk).state == "done"
    (outcome,) = file.__class__.objects.get(pk=file.pk).outcomes
    assert outcome["error"].startswith("refused before, not parsed again: ")
    assert RawInput.objects.count() == 1


def test_a_file_that_killed_the_worker_three_times_is_refused(bob, queued):
    post(client_for(bob), SimpleUploadedFile("nice.xml.gz", NICE_INPUT.read_bytes()))
    file = UploadFile.objects.get()
    UploadFile.objects.filter(pk=file.pk).update(state="running", attempts=uploads.MAX_ATTEMPTS)
    file = uploads.parse(file.pk)
    assert (file.state, file.outcomes[0]["status"]) == ("done", "invalid")
    assert "the worker stopped 3 times while parsing it" in file.outcomes[0]["error"]
    assert RawInput.objects.get().status == InputStatus.REFUSED
    assert not AggregateReport.objects.exists()


def test_a_file_parsed_already_is_not_parsed_twice(bob, queued):
    post(client_for(bob), SimpleUploadedFile("nice.xml.gz", NICE_INPUT.read_bytes()))
    file = UploadFile.objects.get()
    uploads.parse(file.pk)
    finished = UploadFile.objects.get().finished_at
    assert uploads.parse(file.pk).finished_at == finished  # a message delivered twice


def test_too_many_files_get_a_page_that_says_the_limit(bob, queued, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 5
    files = [SimpleUploadedFile(f"r{n}.xml", b"<feedback/>") for n in range(6)]
    response = post(client_for(bob), *files)
    assert response.status_code == 400
    page = response.content.decode()
    assert "An upload may hold at most 5 files: nothing was stored." in page
    assert '<link rel="stylesheet"' in page  # the app's page, not Django's bare 400
    assert 'type="file" name="files" multiple' in page  # with the form to try again
    assert not UploadFile.objects.exists() and not RawInput.objects.exists()


def test_the_upload_form_says_the_limits(bob):
    page = client_for(bob).get("/reports/upload/").content.decode()
    assert "Up to 100 files and 100\xa0MB per upload." in page


@pytest.mark.django_db(transaction=True)
def test_the_worker_parses_an_upload_while_the_site_answers(celery_worker, bob, acme):
    """Against a real worker: the request answers at once however bad the files, and the
    page's fragment reaches the outcome of each."""
    Domain.objects.create(organization=acme, name="example.com")
    client = client_for(bob)
    started = time.monotonic()
    response = post(
        client,
        SimpleUploadedFile("bomb-1.xml.gz", BOMB),
        SimpleUploadedFile("bomb-2.xml.gz", BOMB + b"\0"),
        SimpleUploadedFile("nice.xml.gz", NICE_INPUT.read_bytes()),
    )
    assert time.monotonic() - started < 2
    deadline = time.monotonic() + 60
    while "data-poll" in (
        fragment := client.get(response["Location"], headers=FRAGMENT).content.decode()
    ):
        assert time.monotonic() < deadline, celery_worker.output()
        time.sleep(0.2)
    assert "All 3 files read: 1 imported, 0 duplicates, 2 invalid" in fragment
    assert set(UploadFile.objects.values_list("state", flat=True)) == {"done"}


def test_a_page_of_many_results_shows_the_first_and_counts_all(bob, queued, monkeypatch):
    from reports import views

    monkeypatch.setattr(views, "UPLOAD_ROWS_SHOWN", 2)
    mbox = b"".join(b"From a@b Sat Jan  3 01:05:34 1996\n\nhello\n\n" for _ in range(5))
    response = post(client_for(bob), SimpleUploadedFile("archive.mbox", mbox))
    uploads.parse(UploadFile.objects.get().pk)
    page = client_for(bob).get(response["Location"])
    assert len(page.context["rows"]) == 2
    text = page.content.decode()
    assert "All 1 file read: 0 imported, 0 duplicates, 5 invalid" in text
    assert "And 3 more results, counted above." in text
