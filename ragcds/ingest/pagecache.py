"""Page-text cache: text extraction is the slowest ingest step after embedding (~6 s for the UCG).

:class:`CachedPageReader` is a drop-in for ``ingest.pdf.read_pdf``: each page's extracted text is cached in
``INDEX/cache/page-text.jsonl`` under a digest of everything extraction depends on (content streams,
resources with fonts and forms resolved recursively, rotation, pypdf version). An errata PDF re-extracts
only its edited pages. Any problem with the cache falls back to plain extraction.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from pathlib import Path

from ragcds.files import jsonl_text, read_jsonl, write_text_atomic
from ragcds.ingest.pdf import Page, read_pdf

PAGE_CACHE = Path("cache") / "page-text.jsonl"
PAGE_CACHE_MAX = 5000  # entries kept (about four editions of the UCG)


def _digest(obj: object, h: hashlib._Hash, memo: dict, depth: int = 0) -> None:
    """Feed a PDF object into ``h`` by content: indirect references resolved (memoised), streams by their
    stored bytes, /Parent links skipped."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

    if isinstance(obj, IndirectObject):
        key = (obj.idnum, obj.generation)
        if key not in memo:
            memo[key] = b"cycle"
            sub = hashlib.sha256()
            _digest(obj.get_object(), sub, memo, depth + 1)
            memo[key] = sub.digest()
        h.update(memo[key])
        return
    if depth > 32:
        h.update(b"<deep>")
        return
    if isinstance(obj, StreamObject):
        data = getattr(obj, "_data", None)
        h.update(b"S" + hashlib.sha256(data if isinstance(data, bytes) else obj.get_data()).digest())
    if isinstance(obj, DictionaryObject):
        h.update(b"{")
        for k in sorted(obj):
            if k != "/Parent":
                h.update(str(k).encode())
                _digest(obj.raw_get(k), h, memo, depth + 1)
        h.update(b"}")
    elif isinstance(obj, ArrayObject):
        h.update(b"[")
        for item in obj:
            _digest(item, h, memo, depth + 1)
        h.update(b"]")
    elif not isinstance(obj, StreamObject):
        h.update(repr(obj).encode())


_NAME = rb"/([^\s/\[\]<>(){}%]+)"
_USES_FONT = re.compile(_NAME + rb"\s+[-+\d.]+\s+Tf")
_USES_XOBJECT = re.compile(_NAME + rb"\s+Do\b")


def page_key(page: object, memo: dict) -> str:
    """Digest of what text extraction of one pypdf page depends on: its content streams, rotation and
    resources — of the /Font and /XObject dictionaries only the entries the content uses (resource
    dictionaries are often shared by all pages, and an edit elsewhere may add fonts to them)."""
    import pypdf

    h = hashlib.sha256(f"pypdf {pypdf.__version__}".encode())
    for name in ("/Contents", "/Rotate"):
        h.update(name.encode())
        if name in page:  # type: ignore[operator]
            _digest(page.raw_get(name), h, memo)  # type: ignore[attr-defined]
    contents = page.get_contents()  # type: ignore[attr-defined]
    data = contents.get_data() if contents is not None else b""
    used = {"/Font": set(_USES_FONT.findall(data)), "/XObject": set(_USES_XOBJECT.findall(data))}
    resources = page.get("/Resources")  # type: ignore[attr-defined]
    resources = resources.get_object() if resources is not None else {}
    for key in sorted(resources):
        h.update(str(key).encode())
        if key in used:
            sub = resources[key].get_object()
            for name in sorted(sub):
                if str(name)[1:].encode() in used[key]:
                    h.update(str(name).encode())
                    _digest(sub.raw_get(name), h, memo)
        else:
            _digest(resources.raw_get(key), h, memo)
    return h.hexdigest()


class CachedPageReader:
    """A drop-in for ``read_pdf`` that reuses the extracted text of unchanged pages (see module docs)."""

    def __init__(self, index_dir: Path):
        self.path = Path(index_dir) / PAGE_CACHE
        self.hits = 0
        self.misses = 0

    def _load(self) -> dict[str, str]:
        try:
            return {r["key"]: r["text"] for r in read_jsonl(self.path)}
        except (OSError, ValueError, KeyError):
            return {}

    def __call__(self, pdf: Path, progress=None) -> list[Page]:
        cache = self._load()
        fresh: dict[str, str] = {}
        memo: dict = {}

        def extract(page) -> str:
            try:
                key = page_key(page, memo)
            except Exception:  # noqa: BLE001 - a page we cannot key is simply extracted
                self.misses += 1
                return page.extract_text() or ""
            text = cache.get(key)
            if text is None:
                text = page.extract_text() or ""
                self.misses += 1
            else:
                self.hits += 1
            fresh[key] = text
            return text

        pages = read_pdf(pdf, progress=progress, extract=extract)
        if self.misses:
            merged = {**fresh, **{k: v for k, v in cache.items() if k not in fresh}}
            rows = list(merged.items())[:PAGE_CACHE_MAX]
            with contextlib.suppress(OSError):  # a cache that cannot be written is only a slower next run
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(self.path, jsonl_text({"key": k, "text": v} for k, v in rows))
        return pages
