"""Test fixtures. Tiers: unit tests (default, fakes); `-m integration` tests on the real UCG and packaged
models (skipped with a reason when ../shared or a model is absent). `.ci/run` runs both."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragcds.index.embedders import register_embedder
from tests.fakes import FakeEmbedder

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RAGCDS_SHARED", REPO.parent / "shared"))
UCG_PDF = SHARED / "corpus" / "ucg-2023.pdf"
UCG_TEXT = SHARED / "corpus" / "ucg-2023.pages.txt"
DEV_SET = SHARED / "eval" / "dev.jsonl"

register_embedder("fake", lambda arg: FakeEmbedder(int(arg or 64)))


@pytest.fixture(autouse=True)
def registries():
    """Backends, embedders and plugin discovery registered by a test are removed again after it."""
    from ragcds import plugins
    from ragcds.generate import backends
    from ragcds.index import embedders

    saved = dict(backends._BACKENDS), dict(embedders._FACTORIES), plugins.state()
    yield
    backends._BACKENDS.clear()
    backends._BACKENDS.update(saved[0])
    embedders._FACTORIES.clear()
    embedders._FACTORIES.update(saved[1])
    plugins.restore(saved[2])


@pytest.fixture(autouse=True)
def ragcds_home(tmp_path, monkeypatch):
    """All user state (audit log, caches) goes to a temp dir; errors re-raise for readable failures."""
    home = tmp_path / "ragcds-home"
    monkeypatch.setenv("RAGCDS_HOME", str(home))
    monkeypatch.delenv("RAGCDS_INDEX", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared corpus/eval folder sits beside the repo as ../shared)")
    return path


@pytest.fixture(scope="session")
def ucg_pdf() -> Path:
    return need(UCG_PDF)


@pytest.fixture(scope="session")
def dev_set() -> Path:
    return need(DEV_SET)


@pytest.fixture(scope="session")
def real_embedder():
    from ragcds.index.embedders import load_embedder

    try:
        return load_embedder("default")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"packaged embedder unavailable: {exc}")


@pytest.fixture(scope="session")
def ucg_index(tmp_path_factory, ucg_pdf, real_embedder) -> Path:
    """The real UCG index, built once per test session (or reused from RAGCDS_TEST_INDEX if given)."""
    from ragcds.index.build import build_index

    given = os.environ.get("RAGCDS_TEST_INDEX")
    if given and (Path(given) / "CURRENT").exists():
        return Path(given)
    out = tmp_path_factory.mktemp("ucg") / "index"
    build_index(ucg_pdf, out, real_embedder, "default")
    return out


@pytest.fixture(scope="session")
def ucg_retriever(ucg_index, real_embedder):
    from ragcds.retrieve import HybridRetriever

    return HybridRetriever.open(ucg_index, real_embedder)
