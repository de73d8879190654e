"""Progress off a terminal: plain timed lines on stderr (a log shows that work is moving)."""
from __future__ import annotations

import json
import subprocess
import sys

from nearspace.progress import PlainProgress, progress_bar
from tests.conftest import EXAMPLES, ROOT


def test_plain_lines_report_the_count_and_a_last_line(capsys):
    bar = PlainProgress(interval=0)
    bar.start()
    task = bar.add_task("indexing into notes", total=4)
    bar.advance(task, 1)
    bar.update(task, advance=1, description="files (3 chunks)")
    bar.stop()
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("indexing into notes: 1/4 (25%)") and "left" in lines[0]
    assert lines[1].startswith("files (3 chunks): 2/4 (50%)") and lines[-1].endswith("(done)")


def test_short_work_stays_silent_and_off_means_off(capsys, monkeypatch):
    with PlainProgress(interval=60) as bar:
        bar.advance(bar.add_task("quick", total=2), 2)
    monkeypatch.setenv("NEARSPACE_PROGRESS", "off")
    with progress_bar() as bar:
        bar.advance(bar.add_task("hidden", total=2), 2)
    assert capsys.readouterr().err == ""


def test_a_cli_run_into_a_log_reports_progress(tmp_path):
    docs = tmp_path / "many.jsonl"
    lines = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    docs.write_text("\n".join(json.dumps({**d, "id": f"{d['id']}-{n}"}) for n in range(10) for d in lines) + "\n")
    env = {**__import__("os").environ, "NEARSPACE_PROGRESS_INTERVAL": "0"}
    proc = subprocess.run([sys.executable, "-m", "nearspace.cli", "--store", str(tmp_path / "s.db"), "index",
                           str(docs), "--batch-size", "64"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    progress = [line for line in proc.stderr.splitlines() if line.startswith("indexing into default:")]
    assert progress and progress[-1].startswith("indexing into default: 600/600 (100%)"), proc.stderr[-2000:]
