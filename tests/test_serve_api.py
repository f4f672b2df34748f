"""`ragcds serve` API against a real uvicorn server on a free local port (fake embedder, generated guideline)."""

from __future__ import annotations

import json
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from typer.testing import CliRunner

from ragcds import audit
from ragcds.cli.main import app as cli_app
from ragcds.errors import BackendUnavailable
from ragcds.files import read_jsonl
from ragcds.generate.backends.extractive import ExtractiveGenerator
from ragcds.index import store
from ragcds.ingest.chunk import Chunk
from tests.fakes import FakeGenerator
from tests.pdfgen import make_guideline_pdf
from tests.reindex_cli_helper import second_edition
from tests.servekit import IN_SCOPE_Q, OFF_TOPIC_Q, TREATMENT_Q, ingest, serving, small_index

runner = CliRunner()
QUESTION = IN_SCOPE_Q


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    return small_index(tmp_path_factory.mktemp("serve"))


@pytest.fixture
def server(index_dir):
    with serving(index_dir, ExtractiveGenerator()) as (url, svc):
        yield url, svc


def chunks_of(index_dir) -> list[Chunk]:
    vdir = store.resolve_version_dir(index_dir)
    return [Chunk.from_dict(d) for d in read_jsonl(vdir / "chunks.jsonl")]


def cli_json(*args: str):
    res = runner.invoke(cli_app, list(args))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_search_returns_exactly_what_the_cli_prints(server, index_dir):
    url, _ = server
    body = {"question": "artesunate severe malaria", "k": 4, "mode": "hybrid"}
    got = httpx.post(f"{url}/v1/search", json=body).json()
    want = cli_json("search", body["question"], "-k", "4", "--json", "--index", str(index_dir))
    assert got == want and len(got) == 4
    bm25 = httpx.post(f"{url}/v1/search", json={**body, "mode": "bm25", "k": 2}).json()
    assert bm25 == cli_json("search", body["question"], "-k", "2", "--mode", "bm25", "--json", "--index",
                            str(index_dir))


@pytest.mark.parametrize("fmt", ["prose", "xml"])
def test_ask_returns_the_cli_record_and_writes_the_audit_log(server, index_dir, fmt):
    url, _ = server
    res = httpx.post(f"{url}/v1/ask", json={"question": QUESTION, "format": fmt, "k": 3})
    assert res.status_code == 200, res.text
    got = res.json()
    want = cli_json("ask", QUESTION, "--format", fmt, "-k", "3", "--json", "--backend", "extractive", "--index",
                    str(index_dir))
    got.pop("timings"), want.pop("timings")
    assert got == want
    assert got["policy"] == "answered" and got["citations"] and all(c["valid"] for c in got["citations"])
    rows = audit.recent(5)
    row = next(r for r in rows if r["id"] == int(res.headers["x-ragcds-audit-id"]))
    assert row["question"] == QUESTION and row["format"] == fmt
    assert row["chunk_ids"] == [p["chunk_id"] for p in got["passages"]]


def test_ask_without_audit_writes_nothing(index_dir):
    with serving(index_dir, ExtractiveGenerator(), audit=False) as (url, _):
        res = httpx.post(f"{url}/v1/ask", json={"question": QUESTION})
    assert res.status_code == 200 and "x-ragcds-audit-id" not in res.headers
    assert audit.recent(5) == []


def test_ask_passes_the_options_to_the_pipeline(index_dir):
    gen = FakeGenerator(["Convulsions are a danger sign [1]."])
    with serving(index_dir, gen) as (url, _):
        res = httpx.post(f"{url}/v1/ask", json={"question": QUESTION, "k": 2, "max_new_tokens": 17,
                                                "temperature": 0.5})
        closed = httpx.post(f"{url}/v1/ask", json={"question": QUESTION, "rag": False})
    assert res.status_code == 200 and closed.status_code == 200
    request = gen.requests[0]
    assert len(request.passages) == 2 and request.max_new_tokens == 17 and request.temperature == 0.5
    assert res.json()["answer"] == "Convulsions are a danger sign [1]." and res.json()["model"] == "fake-model"
    assert closed.json()["mode"] == "closed-book" and closed.json()["passages"] == []


def test_treatment_question_follows_the_policy(server):
    url, _ = server
    q = TREATMENT_Q
    quoted = httpx.post(f"{url}/v1/ask", json={"question": q}).json()
    refused = httpx.post(f"{url}/v1/ask", json={"question": q, "policy": "refuse"}).json()
    assert quoted["policy"] == "quoted" and "2.4 mg/kg" in (quoted["quote"] or quoted["answer"])
    assert any(c["quoted"] and c["section"] == "2.2.1.1" for c in quoted["citations"])
    assert refused["policy"] == "refused" and "mg" not in refused["answer"]
    outside = httpx.post(f"{url}/v1/ask", json={"question": OFF_TOPIC_Q}).json()
    assert outside["policy"] == "out_of_scope" and outside["citations"] == []


def one_line(res: httpx.Response, status: int) -> str:
    assert res.status_code == status, res.text
    body = res.json()
    assert set(body) == {"error", "status"} and body["status"] == status
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def test_errors_are_one_line_json_with_proper_status(server):
    url, _ = server
    msg = one_line(httpx.post(f"{url}/v1/ask", json={"question": "   "}), 400)
    assert msg.startswith("the question is empty")
    assert one_line(httpx.post(f"{url}/v1/search", json={"question": ""}), 400) == msg
    assert "no section '9.9.9'" in one_line(httpx.get(f"{url}/v1/sections/9.9.9"), 404)
    assert "k:" in one_line(httpx.post(f"{url}/v1/ask", json={"question": "x", "k": 99}), 422)
    assert "format:" in one_line(httpx.post(f"{url}/v1/ask", json={"question": "x", "format": "yaml"}), 422)
    assert "question:" in one_line(httpx.post(f"{url}/v1/ask", json={"question": "fever " * 1000}), 422)
    assert "colour" in one_line(httpx.post(f"{url}/v1/search", json={"question": "x", "colour": 1}), 422)
    one_line(httpx.post(f"{url}/v1/ask", content=b"{not json", headers={"content-type": "application/json"}), 422)
    one_line(httpx.get(f"{url}/v1/nothing"), 404)


class Failing(FakeGenerator):
    def __init__(self, exc: Exception):
        super().__init__()
        self.exc = exc

    def generate(self, request):
        raise self.exc


def test_model_unavailable_is_503_and_a_crash_is_500_without_trace(index_dir):
    down = BackendUnavailable("cannot reach the model server at http://127.0.0.1:9/v1 — start it")
    with serving(index_dir, Failing(down)) as (url, _):
        res = httpx.post(f"{url}/v1/ask", json={"question": QUESTION})
        assert "cannot reach the model server" in one_line(res, 503)
        assert httpx.post(f"{url}/v1/search", json={"question": QUESTION}).status_code == 200
    with serving(index_dir, Failing(ZeroDivisionError("division by zero"))) as (url, _):
        msg = one_line(httpx.post(f"{url}/v1/ask", json={"question": QUESTION}), 500)
    assert msg.startswith("unexpected ZeroDivisionError: division by zero")


def test_bearer_token_guards_the_api_not_the_page(index_dir):
    with serving(index_dir, ExtractiveGenerator(), token="s3cret") as (url, _):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            res = httpx.post(f"{url}/v1/search", json={"question": "malaria"}, headers=headers)
            assert "access token" in one_line(res, 401) and res.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{url}/v1/health").status_code == 401
        ok = httpx.post(f"{url}/v1/search", json={"question": "malaria"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()
        assert httpx.get(f"{url}/").status_code == 200  # the page holds no data; it asks for the token
        assert httpx.get(f"{url}/openapi.json").json()["components"]["securitySchemes"]["HTTPBearer"]


def test_section_text_is_its_chunks_in_order_with_printed_pages(server, index_dir):
    url, _ = server
    res = httpx.get(f"{url}/v1/sections/2.2.1.1")
    assert res.status_code == 200
    s = res.json()
    own = [c for c in chunks_of(index_dir) if c.section == "2.2.1.1"]
    assert s["title"] == "Complicated/Severe Malaria" and s["text"] == "\n".join(c.text for c in own)
    assert "- Give IV artesunate 2.4 mg/kg at 0, 12 and 24 hours" in s["text"].splitlines()
    assert "\n".join(b["text"] for b in s["blocks"]) == s["text"]
    assert {b["chunk_id"] for b in s["blocks"]} == {c.chunk_id for c in own}
    assert s["printed_pages"] == list(dict.fromkeys(p for c in own for p in c.printed_pages))
    assert s["parent"] == {"section": "2.2.1", "title": "Malaria"}
    parent = httpx.get(f"{url}/v1/sections/2.2.1").json()
    assert {"section": "2.2.1.1", "title": "Complicated/Severe Malaria"} in parent["children"]


def test_section_blocks_split_a_chunk_at_its_page_break(tmp_path):
    from ragcds.serve.sections import SectionTable, page_blocks

    chunk = Chunk("c", "1.1", "T", ("T",), "", (5, 6), ("3", "4"), "a one\nb two\nc three\nd four")
    table = SectionTable({"1.1": [0]}, {5: frozenset({"a one", "b two"}), 6: frozenset({"c three", "d four", "a one"})})
    blocks = page_blocks(chunk, table.page_lines)
    assert [(b["printed_page"], b["text"]) for b in blocks] == [("3", "a one\nb two"), ("4", "c three\nd four")]
    assert [b["text"] for b in page_blocks(chunk, {})] == [chunk.text]


def test_a_misnumbered_section_names_the_parent_the_book_prints_it_under():
    from ragcds.serve.sections import SectionTable, section_view

    chunks = [Chunk("p", "9.2", "Psychiatric Disorders", ("9 Mental", "9.2 Psychiatric Disorders"), "", (580,),
                    ("524",), "Reprinted heading."),
              Chunk("a", "9.1.1b", "Alcohol Use Disorders", ("9 Mental", "9.2 Psychiatric Disorders",
                                                               "9.1.1 Alcohol Use Disorders"), "", (609,), ("543",),
                    "Drinking.")]
    view = section_view("9.1.1b", chunks, SectionTable({"9.2": [0], "9.1.1b": [1]}, {}), "v1")
    assert view["parent"] == {"section": "9.2", "title": "Psychiatric Disorders"}
    assert view["citation"] == "§9.1.1b Alcohol Use Disorders, p. 543"


def test_health_reports_index_model_and_uptime(server, index_dir):
    url, _ = server
    h = httpx.get(f"{url}/v1/health").json()
    assert h["status"] == "ok" and h["index"]["version"] == store.current_version(index_dir)
    assert h["model"] == {"backend": "extractive", "model": "extractive"} and h["uptime_s"] >= 0
    assert h["index"]["chunks"] == len(chunks_of(index_dir))


def test_page_and_docs_use_only_local_assets(server):
    url, _ = server
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    refs = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs)
    for ref in refs:
        assert httpx.get(url + ref).status_code == 200, ref
    docs = httpx.get(f"{url}/docs").text
    assets = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", docs)
    assert assets and all(a.startswith("/") for a in assets), assets
    assert all(httpx.get(url + a).status_code == 200 for a in assets)


def test_concurrent_requests_all_succeed(server):
    url, _ = server
    with httpx.Client() as client:
        def one(i: int) -> int:
            if i % 2:
                return client.post(f"{url}/v1/search", json={"question": f"malaria danger signs {i}"}).status_code
            return client.post(f"{url}/v1/ask", json={"question": f"dehydration in a child {i}"}).status_code

        with ThreadPoolExecutor(16) as pool:
            assert set(pool.map(one, range(64))) == {200}


class Gate(FakeGenerator):
    """Blocks inside generate() until released, so an index swap can happen in the middle of a request."""

    def __init__(self):
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def generate(self, request):
        self.entered.set()
        assert self.release.wait(30)
        return "Convulsions [1]."


def test_hot_swap_is_picked_up_and_never_mixes_versions(tmp_path):
    index_dir = small_index(tmp_path)
    old = store.current_version(index_dir)
    old_ids = {c.chunk_id for c in chunks_of(index_dir)}
    gen = Gate()
    with serving(index_dir, gen) as (url, svc), httpx.Client(timeout=60) as client:
        box: dict = {}
        t = threading.Thread(target=lambda: box.update(r=client.post(f"{url}/v1/ask", json={"question": QUESTION})))
        t.start()
        assert gen.entered.wait(30)
        ingest(make_guideline_pdf(tmp_path / "ed2.pdf", second_edition()), index_dir)  # CURRENT moves on
        new = store.current_version(index_dir)
        assert new != old
        mid = client.post(f"{url}/v1/search", json={"question": "plague gentamicin", "k": 3}).json()
        gen.release.set()
        t.join(30)
        first = box["r"].json()
        assert first["index_version"] == old and {p["chunk_id"] for p in first["passages"]} <= old_ids
        assert any(h["section"] == "2.1.4" for h in mid)  # Plague exists only in the new edition
        assert client.get(f"{url}/v1/health").json()["index"]["version"] == new
        assert client.get(f"{url}/v1/sections/2.1.4").status_code == 200
        res = runner.invoke(cli_app, ["index", "activate", old, "--index", str(index_dir)])
        assert res.exit_code == 0, res.output
        assert client.get(f"{url}/v1/sections/2.1.4").status_code == 404
        health = client.get(f"{url}/v1/health").json()
        assert health["index"]["version"] == old and health["index"]["swaps"] == 2


def test_a_broken_new_version_keeps_the_old_one_serving(tmp_path):
    index_dir = small_index(tmp_path)
    old = store.current_version(index_dir)
    broken = index_dir / store.VERSIONS / "20990101T000000-broken"
    shutil.copytree(index_dir / store.VERSIONS / old, broken)
    (broken / "dense.faiss").write_bytes(b"not faiss")
    manifest = json.loads((broken / store.MANIFEST).read_text())
    (broken / store.MANIFEST).write_text(json.dumps({**manifest, "version_id": broken.name}))
    with serving(index_dir, ExtractiveGenerator()) as (url, _):
        store.set_current(index_dir, broken.name)
        assert httpx.post(f"{url}/v1/search", json={"question": "malaria"}).status_code == 200
        h = httpx.get(f"{url}/v1/health").json()
        assert h["status"] == "degraded" and h["index"]["version"] == old
        assert broken.name in h["index"]["reload_error"] and "still serving" in h["index"]["reload_error"]
        store.set_current(index_dir, old)
        h = httpx.get(f"{url}/v1/health").json()
        assert h["status"] == "ok" and h["index"]["reload_error"] == ""


@pytest.mark.integration
def test_real_guideline_section_at_its_printed_pages(ucg_index, real_embedder):
    with serving(ucg_index, ExtractiveGenerator()) as (url, _):
        s = httpx.get(f"{url}/v1/sections/2.5.2.2").json()
        hits = httpx.post(f"{url}/v1/search", json={"question": "signs of severe malaria in children"}).json()
    assert s["title"] == "Complicated/Severe Malaria" and s["printed_pages"][0] == "166"
    assert "\n".join(b["text"] for b in s["blocks"]) == s["text"]
    pages = [int(b["printed_page"]) for b in s["blocks"]]
    assert pages == sorted(pages) and len(set(pages)) == len(s["printed_pages"])
    assert hits and all(h["printed_pages"] for h in hits)
