"""Index integrity and safe activation at the library level: sha256 verification on load, version ids that
cannot leave the index, ungated versions gated before going live, recovery hints, no folder created for a
mistyped path. (The CLI side of each, with its hint executed, is in tests/reliability_matrix.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ragcds.errors import BadVersionId, CorruptIndex, GateFailed, IndexNotFound
from ragcds.index import store, versions
from ragcds.index.build import build_index
from ragcds.index.dense import DenseIndex
from ragcds.index.update import update_index
from tests.fakes import FakeEmbedder
from tests.pdfgen import DEFAULT_SECTIONS, make_guideline_pdf
from tests.reindex_cli_helper import make_editions


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("integrity")
    ed1, ed2 = make_editions(folder)
    return {"ed1": ed1, "ed2": ed2, "short": make_guideline_pdf(folder / "short.pdf", DEFAULT_SECTIONS[:5])}


@pytest.fixture
def two_versions(tmp_path, pdfs) -> tuple[Path, str, str]:
    index = tmp_path / "index"
    old = update_index(pdfs["ed1"], index, FakeEmbedder(64), "fake:64").new_version
    new = update_index(pdfs["ed2"], index, FakeEmbedder(64), "fake:64").new_version
    return index, old, new


def test_a_changed_dose_in_chunks_jsonl_is_refused_on_load(two_versions):
    index, old, new = two_versions
    chunks = index / "versions" / new / "chunks.jsonl"
    text = chunks.read_text()
    assert "750 mg" in text
    chunks.write_text(text.replace("750 mg", "950 mg"))  # same length: only the hash can tell
    with pytest.raises(CorruptIndex, match=f"chunks.jsonl does not match the sha256.*ragcds index activate {old}"):
        store.load_index(index)
    assert versions.verify(index)["versions"][0]["problems"]
    assert versions.rollback_target(index, new) == old


@pytest.mark.parametrize("name", ["dense.faiss", "bm25/data.csc.index.npy", "bm25/vocab.index.json"])
def test_every_loaded_file_is_verified(two_versions, name):
    index, _, new = two_versions
    path = index / "versions" / new / name
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndex, match=name.replace(".", r"\.")):
        store.load_index(index)


def test_verified_load_reads_the_same_index(two_versions):
    index, _, new = two_versions
    vdir = index / "versions" / new
    loaded = store.load_index(index)
    plain = DenseIndex.load(vdir / "dense.faiss")
    assert np.array_equal(loaded.dense.vectors(), plain.vectors())
    assert [c.chunk_id for c in loaded.chunks] == [json.loads(x)["chunk_id"] for x in open(vdir / "chunks.jsonl")]
    assert store.verify_version(vdir) == []


@pytest.mark.parametrize("bad", ["..", ".", "../x", "a/b", "/etc", ".tmp-abc", "", "x" * 200, "v1 x"])
def test_version_ids_cannot_name_anything_outside_the_index(tmp_path, bad):
    with pytest.raises(BadVersionId, match="not a version id"):
        store.version_path(tmp_path, bad)


def test_activate_refuses_another_index_version(two_versions, tmp_path, pdfs):
    index, old, new = two_versions
    other = tmp_path / "OTHER"
    foreign = build_index(pdfs["short"], other, FakeEmbedder(64), "fake:64").version_id
    for ref in (f"../../OTHER/versions/{foreign}", str(other / "versions" / foreign)):
        with pytest.raises(BadVersionId):
            versions.activate(index, ref)
    with pytest.raises(BadVersionId):
        store.set_current(index, f"../../OTHER/versions/{foreign}")
    assert store.current_version(index) == new


def test_current_holding_a_path_is_refused(two_versions):
    index, old, new = two_versions
    (index / "CURRENT").write_text("../../elsewhere\n")
    with pytest.raises(CorruptIndex, match=f"not a version id.*ragcds index activate ({old}|{new})"):
        store.load_index(index)


def test_ungated_version_is_gated_before_it_goes_live(two_versions, pdfs):
    index, old, new = two_versions
    bad = build_index(pdfs["short"], index, FakeEmbedder(64), "fake:64", activate=False).version_id
    assert {r["version_id"]: r["gates"] for r in versions.version_rows(index)}[bad] == "-"
    with pytest.raises(GateFailed, match="its gates ran now and failed.*--force"):
        versions.activate(index, bad)
    assert store.current_version(index) == new and versions.read_history(index)[-1]["event"] == "blocked"
    assert versions.read_activation(index / "versions" / bad)["gates"]["passed"] is False
    good = "20260101T000000-oldbuild"  # a version from before gates were recorded
    shutil.copytree(index / "versions" / old, index / "versions" / good)
    (index / "versions" / good / "activation.json").unlink()
    row = versions.activate(index, good)
    assert row["gate_report"].passed and store.current_version(index) == good
    assert versions.gate_status(index / "versions" / good) == "passed"


def test_forcing_an_ungated_version_records_the_reason(two_versions, pdfs):
    index, _, _ = two_versions
    vid = build_index(pdfs["short"], index, FakeEmbedder(64), "fake:64", activate=False).version_id
    row = versions.activate(index, vid, force=True, reason="emergency errata, gates reviewed by hand")
    assert row["forced"] and store.current_version(index) == vid
    assert versions.read_activation(index / "versions" / vid)["reason"].startswith("emergency")
    assert versions.gate_status(index / "versions" / vid) == "forced"


def test_damaged_version_cannot_be_activated(two_versions):
    index, old, new = two_versions
    (index / "versions" / old / "pages.jsonl").write_text("edited\n")
    with pytest.raises(CorruptIndex, match="damaged.*pages.jsonl"):
        versions.activate(index, old)
    assert store.current_version(index) == new


def test_admin_commands_never_create_a_mistyped_index(tmp_path):
    typo = tmp_path / "indx"
    with pytest.raises(IndexNotFound):
        versions.gc(typo, keep=2)
    with pytest.raises(IndexNotFound):
        versions.activate(typo, "20260101T000000-abcdef12")
    with pytest.raises(IndexNotFound):
        versions.verify(typo)
    assert not typo.exists()


def test_a_rebuild_replaces_a_damaged_copy_with_the_same_id(tmp_path, pdfs, monkeypatch):
    index = tmp_path / "index"
    vid = build_index(pdfs["ed1"], index, FakeEmbedder(64), "fake:64").version_id
    chunks = index / "versions" / vid / "chunks.jsonl"
    chunks.write_text(chunks.read_text().replace("500 mg", "900 mg"))
    monkeypatch.setattr("ragcds.index.store.time.strftime", lambda *a: vid.split("-")[0])  # same second
    assert build_index(pdfs["ed1"], index, FakeEmbedder(64), "fake:64").version_id == vid
    assert store.verify_version(index / "versions" / vid) == [] and "500 mg" in chunks.read_text()
    assert len(list((index / "versions").glob(".damaged-*"))) == 1  # set aside, never served


def test_ingest_over_a_damaged_live_version_rebuilds_without_comparing(two_versions, pdfs):
    index, old, new = two_versions
    shutil.rmtree(index / "versions" / old)
    (index / "versions" / new / "structure.json").write_text("{")  # the gates could not read it
    rep = update_index(pdfs["ed2"], index, FakeEmbedder(64), "fake:64", event="ingest")
    assert rep.activated and rep.gates.previous is None and store.load_index(index).chunks
    assert versions.read_history(index)[-1]["event"] == "ingest"
