"""Re-indexing an errata edition of the real UCG against a full build, in the same run.

    python bench/reindex.py [--pages 10] [--keep DIR]

1. full build of the UCG (as `ragcds ingest` does, with the page-text cache filled) — timed;
2. a 10-page errata copy: 10 body pages regenerated (fpdf2, DejaVu Sans) with one dose changed on each and
   swapped into a clone of the PDF (pypdf);
3. `ragcds index update` on it (gated, re-embeds only changed chunks) — timed; and once more on a copy of
   the index without the page-text cache (what the first update after a plain `ragcds ingest` costs).

Prints both times, the ratio (target: update ≤ 10% of the full build) and the change counts.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import UCG_PDF, require  # noqa: E402

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
DOSE = re.compile(r"\b(\d+)(\s?mg)\b")


def _printable(text: str) -> bool:
    return all(ch == "\n" or (unicodedata.category(ch)[0] not in "C" and ord(ch) < 0x2500) for ch in text)


def make_errata(src: Path, dst: Path, n_pages: int) -> list[tuple[int, str, str]]:
    """Copy ``src`` with ``n_pages`` body pages regenerated, one dose changed on each. Returns the edits
    as (pdf page, old line, new line)."""
    import pypdf
    from fpdf import FPDF

    reader = pypdf.PdfReader(str(src))
    total = len(reader.pages)
    edits: list[tuple[int, str, str]] = []
    new_texts: dict[int, list[str]] = {}
    step = (total - 100) // n_pages
    for start in range(100, total, step):  # one page per stretch of the book, spread over the chapters
        for i in range(start, min(start + step, total)):
            text = reader.pages[i].extract_text() or ""
            lines = text.splitlines()
            hit = next((j for j, line in enumerate(lines) if DOSE.search(line)), None)
            if hit is None or not _printable(text) or len(lines) > 70:
                continue
            old = lines[hit]
            m = DOSE.search(old)
            lines[hit] = old[: m.start(1)] + str(int(m.group(1)) * 2) + old[m.end(1) :]
            new_texts[i] = lines
            edits.append((i + 1, old, lines[hit]))
            break
        if len(new_texts) == n_pages:
            break
    writer = pypdf.PdfWriter(clone_from=reader)
    for i, lines in new_texts.items():
        page = writer.pages[i]
        w, h = float(page.mediabox.width), float(page.mediabox.height)
        pdf = FPDF(unit="pt", format=(w, h))
        pdf.set_auto_page_break(False)
        pdf.add_font("DejaVu", "", str(FONT))
        pdf.add_page()
        step_y = min(12.0, (h - 60) / max(1, len(lines)))
        pdf.set_font("DejaVu", size=max(5.0, step_y * 0.75))
        for k, line in enumerate(lines):
            pdf.set_xy(30, 30 + k * step_y)
            pdf.cell(0, step_y, line)
        fresh = pypdf.PdfReader(__import__("io").BytesIO(bytes(pdf.output()))).pages[0]
        page.replace_contents(pypdf.generic.ContentStream(None, writer))
        page.merge_page(fresh)
    with dst.open("wb") as fh:
        writer.write(fh)
    return edits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=10)
    ap.add_argument("--keep", type=Path, help="keep the work folder here instead of a temp dir")
    args = ap.parse_args()
    pdf = require(UCG_PDF)
    if not FONT.exists():
        raise SystemExit(f"skipped: {FONT} is absent (needed to regenerate errata pages)")
    from ragcds.index.build import build_index
    from ragcds.index.embedders import load_embedder
    from ragcds.index.update import update_index
    from ragcds.ingest.pagecache import PAGE_CACHE, CachedPageReader

    work = args.keep or Path(tempfile.mkdtemp(prefix="ragcds-reindex-"))
    work.mkdir(parents=True, exist_ok=True)
    emb = load_embedder("default")
    emb.embed(["warm-up"])

    index_dir = work / "index"
    shutil.rmtree(index_dir, ignore_errors=True)
    t = time.perf_counter()
    full = build_index(pdf, index_dir, emb, "default", reader=CachedPageReader(index_dir))
    full_s = time.perf_counter() - t
    print(
        f"full build: {full_s:.1f}s  ({full.chunks} chunks, {full.pages} pages; "
        + ", ".join(f"{k} {v:.1f}s" for k, v in full.stage_seconds.items())
        + ")"
    )

    errata = work / "ucg-2023-errata.pdf"
    edits = make_errata(pdf, errata, args.pages)
    print(f"errata copy: {len(edits)} pages regenerated, one dose changed on each:")
    for page, old, new in edits:
        print(f"  pdf p.{page}: {old.strip()!r} -> {new.strip()!r}")

    cold = work / "index-no-page-cache"
    shutil.rmtree(cold, ignore_errors=True)
    shutil.copytree(index_dir, cold)
    (cold / PAGE_CACHE).unlink(missing_ok=True)

    t = time.perf_counter()
    rep = update_index(errata, index_dir, emb, "default")
    upd_s = time.perf_counter() - t
    c = rep.counts
    print(
        f"update: {upd_s:.1f}s  activated={rep.activated}  page cache {rep.page_cache}; "
        + ", ".join(f"{k} {v:.1f}s" for k, v in {**rep.build.stage_seconds, **rep.seconds}.items())
    )
    print(
        f"counts: unchanged {c.unchanged}, moved {c.moved}, changed {c.changed}, added {c.added}, "
        f"removed {c.removed}; embedded {rep.build.embedded}, reused {rep.build.reused}"
    )
    for g in rep.gates.results:
        print(
            f"  gate {g.name:16s} {'pass' if g.passed else 'FAIL'}  {g.value}  ({g.threshold})"
            + (f"  e.g. {g.examples[:2]}" if g.examples else "")
        )

    t = time.perf_counter()
    rep_cold = update_index(errata, cold, emb, "default")
    cold_s = time.perf_counter() - t
    print(f"update without page cache: {cold_s:.1f}s (page cache {rep_cold.page_cache})")

    from ragcds.index.diff import diff_refs

    d = diff_refs(f"{index_dir}@{rep.previous_version}", f"{index_dir}@{rep.new_version}")
    print(
        f"diff: {len(d.changed)} sections changed, {len(d.added)} added, {len(d.removed)} removed; "
        f"{sum(n.numbers_changed for n in d.numbers)} lines whose numbers changed"
    )
    result = {
        "full_build_s": round(full_s, 2),
        "update_s": round(upd_s, 2),
        "ratio": round(upd_s / full_s, 4),
        "update_no_page_cache_s": round(cold_s, 2),
        "ratio_no_page_cache": round(cold_s / full_s, 4),
        "counts": c.to_dict() | {"changed_sections": len(c.changed_sections)},
        "embedded": rep.build.embedded,
        "gates_passed": rep.gates.passed,
    }
    print(
        f"RATIO update/full = {upd_s:.1f}s / {full_s:.1f}s = {upd_s / full_s:.1%} (target <= 10%); "
        f"without page cache {cold_s / full_s:.1%}"
    )
    print(json.dumps(result))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
