"""Folder indexing end to end on real files: incremental, renames, deletions, bad files."""
from __future__ import annotations

import os
import shutil

import pytest

from nearspace.ingest.folder import FolderIndexer
from tests.ingest.samples import make_folder


@pytest.fixture()
def docs(tmp_path):
    return make_folder(tmp_path / "docs")


def _index(coll, root, **kw):
    return FolderIndexer(coll, **kw).index([root], show_progress=False)


def test_every_type_is_indexed_with_its_provenance(store, docs):
    coll = store.collection("files")
    summary = _index(coll, docs)
    assert summary.added == 6 and not summary.failed and not summary.skipped
    sources = {d.metadata["source"] for d in coll.get([*coll.backend.ids()])}
    assert sources == {"docs/garden.md", "docs/tea.html", "docs/notes.txt", "docs/astronomy.pdf",
                       "docs/bike.docx", "docs/faq.csv"}
    pdf_pages = sorted(coll.get(i).metadata["page"] for i in coll.backend.ids() if i.startswith("docs/astronomy.pdf"))
    assert pdf_pages == [1, 2]
    watering = [coll.get(i) for i in coll.backend.ids() if i.startswith("docs/garden.md")]
    assert any(d.metadata.get("headings") == ["Gardening Guide", "Watering"] and d.title.endswith("Watering")
               for d in watering)
    for d in watering:
        lines = (docs / "garden.md").read_text().splitlines()
        first = lines[d.metadata["line_start"] - 1]
        assert first.strip() and first.strip() in d.text
    faq = coll.get("q2")
    assert faq.metadata["category"] == "billing" and "invoices" in faq.text
    assert coll.search("how hot should the water be for green tea", k=1)[0].metadata["source"] == "docs/tea.html"


def test_rerun_embeds_nothing_then_only_what_changed(store, docs):
    coll = store.collection("inc")
    first = _index(coll, docs)
    count = coll.count()
    again = _index(coll, docs)
    assert again.unchanged == 6 and again.chunks_written == 0 and coll.count() == count
    # touched but identical: no re-embedding
    os.utime(docs / "notes.txt", ns=(1, 1))
    touched = _index(coll, docs)
    assert touched.chunks_encoded == 0 and touched.changed == 0
    # a real edit re-embeds that file only
    (docs / "notes.txt").write_text("Tides are caused mainly by the Moon and partly by the Sun.\n")
    edited = _index(coll, docs)
    assert edited.changed == 1 and edited.unchanged == 5 and edited.chunks_written == 1
    assert "Sun" in coll.get("docs/notes.txt#0").text
    assert first.chunks_written == count


def test_rename_keeps_vectors_and_delete_removes_chunks(store, docs):
    coll = store.collection("ren")
    _index(coll, docs)
    before = coll.get("docs/garden.md#0")
    (docs / "garden.md").rename(docs / "gardening.md")
    renamed = _index(coll, docs)
    assert renamed.renamed == 1 and renamed.chunks_encoded == 0 and renamed.deleted == 0
    assert coll.get("docs/garden.md#0") is None
    moved = coll.get("docs/gardening.md#0")
    assert moved.text == before.text and moved.metadata["source"] == "docs/gardening.md"
    assert coll.search("compost heap", k=1, mode="dense")[0].metadata["source"] == "docs/gardening.md"
    (docs / "bike.docx").unlink()
    gone = _index(coll, docs)
    assert gone.deleted == 1
    assert not [i for i in coll.backend.ids() if i.startswith("docs/bike.docx")]
    assert "docs/bike.docx" not in coll.backend.tracked_files()


def test_ignore_file_and_symlink_loops(store, docs):
    (docs / ".nearspaceignore").write_text("*.csv\ndrafts/\n")
    (docs / "drafts").mkdir()
    (docs / "drafts" / "wip.md").write_text("# Draft\nnot ready")
    (docs / "sub").mkdir()
    (docs / "sub" / "deep.txt").write_text("Deep file about volcanoes and magma chambers.")
    os.symlink(docs, docs / "sub" / "loop")  # a directory cycle
    coll = store.collection("ign")
    summary = _index(coll, docs)
    sources = {coll.get(i).metadata["source"] for i in coll.backend.ids()}
    assert "docs/faq.csv" not in sources and "docs/drafts/wip.md" not in sources
    assert "docs/sub/deep.txt" in sources
    assert summary.files_seen < 20  # the loop was not followed forever


def test_bad_files_are_reported_and_the_rest_completes(store, docs, tmp_path):
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not a real pdf")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "latin1.txt").write_bytes(b"caf\xe9 cr\xe8me")
    (docs / "huge.txt").write_bytes(b"a" * (3 * 1024 * 1024))
    os.symlink(tmp_path / "vanished.txt", docs / "vanished.txt")  # disappeared before it could be read
    (docs / "bad.jsonl").write_text('{"id": "1", "text": "ok"}\n{"id": oops}\n')
    coll = store.collection("bad")
    summary = _index(coll, docs, max_bytes=2 * 1024 * 1024)
    failed = dict(summary.failed)
    skipped = dict(summary.skipped)
    assert "corrupt PDF" in failed["docs/broken.pdf"]
    assert "empty" in failed["docs/empty.txt"]
    # not UTF-8: read as Windows-1252 (older Western tools write it) and said so, not refused
    assert "docs/latin1.txt" not in failed and dict(summary.decoded)["docs/latin1.txt"] == "cp1252"
    assert coll.get("docs/latin1.txt#0").text == "café crème"
    assert "No such file" in failed["docs/vanished.txt"]
    assert failed["docs/bad.jsonl"].startswith("2: malformed JSON")
    assert "larger than 2 MB" in skipped["docs/huge.txt"]
    assert summary.added == 7  # every good file made it (the Windows-1252 one included)
    assert coll.backend.data.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied_is_reported(store, docs):
    locked = docs / "locked.txt"
    locked.write_text("secret")
    locked.chmod(0)
    summary = _index(store.collection("perm"), docs)
    assert "Permission denied" in dict(summary.failed)["docs/locked.txt"]


def test_cli_index_folder_twice(docs, tmp_path):
    from tests.cli.test_cli import run

    db = tmp_path / "cli.db"
    first = run("--store", str(db), "index", str(docs))
    assert "6 added" in first.stderr
    second = run("--store", str(db), "index", str(docs))
    assert "6 unchanged" in second.stderr and "0 chunks written" in second.stderr
    shutil.rmtree(docs)
