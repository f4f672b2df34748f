"""Integration tests on the real UCG 2023 PDF (../shared/corpus), with one index built per session."""

from __future__ import annotations

import json
import re

import pytest

from ragcds.files import read_jsonl
from ragcds.index import store
from tests.conftest import UCG_TEXT, need

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def version(ucg_index):
    vdir = store.resolve_version_dir(ucg_index)
    manifest = json.loads((vdir / "manifest.json").read_text())
    pages = read_jsonl(vdir / "pages.jsonl")
    chunks = read_jsonl(vdir / "chunks.jsonl")
    return manifest, pages, chunks


def test_all_pages_read_with_printed_labels(version):
    manifest, pages, _ = version
    assert manifest["source"]["pages"] == 1161 == len(pages)
    labels = {p["pdf_page"]: p["label"] for p in pages}
    assert labels[166] == "100"
    assert labels[67] == "1" and labels[636] == "570"
    assert labels[4] == "IV"


def test_contents_entries_found_as_body_sections(version):
    stats = version[0]["stats"]
    assert stats["toc_entries"] > 300
    assert stats["toc_found"] / stats["toc_entries"] >= 0.95, stats["toc_missing"]


def test_every_mg_dose_string_survives_in_some_chunk(version):
    text = need(UCG_TEXT).read_text(encoding="utf-8")
    doses = {" ".join(d.split()) for d in re.findall(r"\b\d+(?:\.\d+)?\s?mg\b", text)}
    corpus = " ".join(" ".join(c["text"].split()) for c in version[2])
    missing = sorted(d for d in doses if not re.search(r"(?<![\d.])" + re.escape(d) + r"\b", corpus))
    assert len(doses) > 100 and missing == []


def test_known_section_is_well_formed(version):
    chunks = version[2]
    severe = [c for c in chunks if c["section"] == "2.5.2.2"]
    assert severe and severe[0]["title"] == "Complicated/Severe Malaria"
    assert severe[0]["heading_path"][0] == "2 Infectious Diseases"
    assert not any("Uganda Clinical Guidelines 2023" in c["text"] for c in chunks)


def test_numbers_the_ucg_prints_twice(version):
    """Chapter 9 reprints §9.2–9.2.4.1 and renumbers Alcohol Use Disorders … 9.1.1–9.1.4; chapter 6 prints
    6.5.4.2/6.5.4.3 twice; chapter 12 prints "1.1.1 Common Cancers in Adults". Each misnumbered section stands
    alone (keyed 9.1.1b …), and each reprint joins its section."""
    titles: dict[str, str] = {}
    pdf_pages: dict[str, set[int]] = {}
    for c in version[2]:
        titles.setdefault(c["section"], c["title"])
        pdf_pages.setdefault(c["section"], set()).update(c["pdf_pages"])
    assert [titles.get(k) for k in ("9.1.1", "9.1.1b", "9.1.2b", "9.1.3b", "9.1.4b")] == [
        "Epilepsy", "Alcohol Use Disorders", "Substance Abuse", "Childhood Behavioural Disorders",
        "Childhood Developmental Disorders"]
    assert titles.get("6.5.4.2b") == "Oesophageal Varices" and titles.get("6.5.4.3b") == "Hepatorenal Syndrome"
    assert titles.get("1.1.1b") == "Common Cancers in Adults" and "9.1.1.1" not in titles
    assert min(pdf_pages["9.2.1"]) < 580 < max(pdf_pages["9.2.1"])  # both printings of Anxiety
    assert len(pdf_pages["9.2.4.1"]) <= 8  # its two printings only, no longer pp. 590–620 whole


def test_hybrid_top5_covers_gold_pages_for_dev_questions(ucg_retriever, dev_set):
    rows = {json.loads(line)["id"]: json.loads(line) for line in dev_set.read_text().splitlines() if line.strip()}
    picked = [r for r in rows.values() if r["gold_pages"]][:3]
    for row in picked:
        hits = ucg_retriever.search(row["question"], k=5)
        covered = set().union(*(h.chunk.pdf_pages for h in hits))
        assert covered & set(row["gold_pages"]), (row["id"], [h.citation() for h in hits])


def test_lines_printed_in_the_wrong_section_are_moved_where_they_belong(version):
    """The UCG prints §1.3.2's atropine regimen on p. 73 under §1.3.3's Prevention heading
    (ragcds/data/misprints.tsv): it is read as §1.3.2's, on the page that prints it, and every row of the
    file matches the book."""
    from ragcds.ingest.misprints import misprints

    text = need(UCG_TEXT).read_text(encoding="utf-8")
    for m in misprints():
        page = text.split(f"[[page {m.pdf_page}]]")[1].split("[[page ")[0]
        assert m.first in page and m.last in page, m
    by_section: dict[str, str] = {}
    for c in version[2]:
        by_section[c["section"]] = by_section.get(c["section"], "") + c["text"]
    assert "Atropine 2-4 mg" not in by_section["1.3.3"] and "Atropine 2-4 mg" in by_section["1.3.2"]
    atropine = [c for c in version[2] if "Atropine 2-4 mg" in c["text"]]
    assert atropine and all(139 in c["pdf_pages"] for c in atropine)
    # p. 364's text gives the heading 5.2.9.4 after its Staphylococcus pneumonia rows
    assert "Stapylococcus pneumonia" in by_section["5.2.9.4"] and "Stapylococcus" not in by_section["5.2.9.3"]


def test_obstructed_labours_opening_is_read_under_its_own_heading(version):
    """PDF p. 808's text gives §16.4.3's Causes and Clinical features before its heading: they are §16.4.3's,
    not the end of §16.4.2 Induction of Labour."""
    text: dict[str, str] = {}
    for c in version[2]:
        text[c["section"]] = text.get(c["section"], "") + c["text"]
    assert "Cephalopelvic disproportion" in text["16.4.3"] and "Cephalopelvic disproportion" not in text["16.4.2"]
    assert "maternal exhaustion" in text["16.4.3"]


def test_wrapped_running_titles_leave_no_heading_behind(version):
    """Chapters 3, 9 and 11 wrap their running title ('… Sexually Transmitted' / 'Infections'): the tail is
    removed with the title on every page (before: about 100 stand-alone 'Infections' lines)."""
    tails = [line.strip() for c in version[2] for line in c["text"].split("\n")
             if line.strip() in ("Infections", "Disorders", "Guidelines")]
    assert len(tails) <= 5, tails


def test_the_section_the_book_numbers_117_2_10_is_17_2_10(version):
    """Contents and body print "117.2.10 Counsel the Mother": it is §17.2.10, not the tail of §17.2.9."""
    titles = {c["section"]: c["title"] for c in version[2]}
    assert titles.get("17.2.10") == "Counsel the Mother"


def test_every_reviewed_caution_matches_a_line_on_its_page(version):
    """ragcds/data/cautions.tsv: each doubtful printed dose is on its PDF page, and a block of the index shows it
    (so the caution is shown beside it)."""
    from ragcds.book import Book
    from ragcds.cautions import cautions
    from ragcds.ingest.chunk import Chunk

    text = need(UCG_TEXT).read_text(encoding="utf-8")
    book = Book([Chunk.from_dict(c) for c in version[2]])
    blocks = [(b.pdf_page, b.text) for n in book.numbers() for b in book.section(n).blocks]
    for c in cautions():
        page = " ".join(text.split(f"[[page {c.pdf_page}]]")[1].split("[[page ")[0].split()).lower()
        assert " ".join(c.line.split()).lower() in page, c
        assert any(c.matches(p, t) for p, t in blocks), c
