"""On the real UCG index: a wrong, 20-page PDF ingested over it is blocked by the gates (the live index
keeps its chunks), the real guideline has no instruction-like text, and every file verifies."""

from __future__ import annotations

import shutil

import pytest

from ragcds.index import store, versions
from ragcds.index.gates import instruction_findings
from ragcds.index.update import update_index

pytestmark = pytest.mark.integration


def test_a_wrong_20_page_pdf_cannot_replace_the_full_index(tmp_path, ucg_index, ucg_pdf, real_embedder):
    import pypdf

    index = tmp_path / "index"
    shutil.copytree(ucg_index, index)
    live = store.current_version(index)
    chunks = store.load_index(index).manifest.chunk_count
    reader, writer = pypdf.PdfReader(ucg_pdf), pypdf.PdfWriter()
    for page in reader.pages[160:180]:  # 20 pages of the same guideline: valid PDF, wrong document
        writer.add_page(page)
    short = tmp_path / "excerpt.pdf"
    with short.open("wb") as fh:
        writer.write(fh)
    rep = update_index(short, index, real_embedder, "default", event="ingest")
    assert not rep.activated and "pages" in rep.gates.failed
    assert store.current_version(index) == live and store.load_index(index).manifest.chunk_count == chunks
    assert versions.gate_status(index / "versions" / rep.new_version) == "FAILED"


def test_the_real_guideline_verifies_and_has_no_instruction_like_text(ucg_index):
    vdir = store.resolve_version_dir(ucg_index)
    assert store.verify_version(vdir) == []
    assert instruction_findings(store.read_chunks(vdir, store.read_manifest(vdir))) == []
