"""import_reports refuses what is no file, saying what it is (issue 13: /dev/zero and a FIFO
were reported as "no such file"), and an input whose import was killed is settled."""

import io
import json
import os

import pytest
from django.core.management import call_command

from reports.models import RawInput


def run(*paths) -> list[dict]:
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("import_reports", "--json", *paths, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()][:-1]


@pytest.mark.django_db
def test_devices_pipes_and_missing_paths_are_told_apart(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    # Opening the FIFO would wait for a writer for ever: it is refused without being opened.
    outcomes = run("/dev/zero", str(fifo), str(tmp_path / "missing.xml"))
    assert [(o["file"], o["error"]) for o in outcomes] == [
        ("/dev/zero", "a character device, not a file: refused"),
        (str(fifo), "a named pipe (FIFO), not a file: refused"),
        (str(tmp_path / "missing.xml"), "no such file"),
    ]
    assert not RawInput.objects.exists()
