"""The fault and bad-input matrix: each case is run by tests/test_reliability.py, and docs/reliability.md is
generated from this list (the test checks the doc is current). Regenerate the doc with::

    python -m tests.reliability_matrix --write

A case either runs here (``run``: it performs the fault against a small index built with the hashing fake
embedder, checks what is kept and, where the message names a fix, runs that fix and checks it works) or
names the test elsewhere that checks it (``checked_by``).
"""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from typer.testing import CliRunner

from ragcds.cli.main import app
from ragcds.index import store, versions

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "reliability.md"
FAKE = ["--embedder", "fake:64"]
QUESTION = "What causes dehydration? Dehydration is loss of body water"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr

    def error_line(self) -> str:
        return next((x for x in self.stderr.splitlines() if x.startswith("error: ")), "")


@dataclass
class Env:
    """One case's sandbox: a copy of the two-version base index, the test PDFs, the CLI."""

    tmp: Path
    index: Path
    pdfs: dict[str, Path]
    old_version: str  # edition 1 (gated, was live before)
    live_version: str  # edition 2 (gated, live)
    env: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, **env: str) -> Result:
        res = CliRunner().invoke(app, [str(a) for a in args], env={"RAGCDS_DEBUG": "0", **self.env, **env})
        return Result(res.exit_code, res.stdout, res.stderr)

    def live(self) -> str | None:
        return store.current_version(self.index)

    def answer_shown(self, res: Result) -> bool:
        """The answer `ask` printed is the one it prints when logging is off."""
        quiet = self.cli("ask", QUESTION, "--index", self.index, "--no-log")
        head = res.stdout.split("\n")[:2]
        return quiet.code == 0 and bool(res.stdout.strip()) and head == quiet.stdout.split("\n")[:2]

    def search_ok(self, index: Path | None = None, *extra: str) -> bool:
        return self.cli("search", "anthrax ciprofloxacin", "--index", index or self.index, *extra).code == 0


def hint_args(res: Result, **subst: str) -> list[str]:
    """The `ragcds ...` command named at the end of the error line, as CLI args, placeholders replaced."""
    line = res.error_line()
    cmd = line[line.rindex(": ragcds ") + 2 :].split(" (")[0]
    return [subst.get(a, a) for a in shlex.split(cmd)[1:]]


@dataclass
class Case:
    case: str  # what goes wrong
    sees: str  # what the user sees (prose; `needle` is the part checked verbatim)
    kept: str  # what is kept
    exit: int | None = None
    needle: str = ""
    run: Callable[[Env], Result] | None = None
    checked_by: str = ""  # another test that checks this row (when run is None)


# ---- cases run here -------------------------------------------------------------------------------------


def ingest_missing_pdf(e: Env) -> Result:
    res = e.cli("ingest", e.tmp / "missing.pdf", "--index", e.index, *FAKE)
    assert e.live() == e.live_version
    return res


def ingest_wrong_pdf(e: Env) -> Result:
    res = e.cli("ingest", e.pdfs["truncated"], "--index", e.index, *FAKE)
    assert e.live() == e.live_version and e.search_ok()
    assert [r["gates"] for r in versions.version_rows(e.index)].count("FAILED") == 1
    return res


def ingest_injected_pdf(e: Env) -> Result:
    res = e.cli("ingest", e.pdfs["injected"], "--index", e.index, *FAKE)
    assert e.live() == e.live_version and "instructions" in res.stderr
    return res


def activate_traversal(e: Env) -> Result:
    other = e.tmp / "OTHER"
    shutil.copytree(e.index, other)
    res = e.cli("index", "activate", f"../../OTHER/versions/{e.old_version}", "--index", e.index)
    absolute = e.cli("index", "activate", other / "versions" / e.old_version, "--index", e.index)
    assert absolute.code == 1 and "not a version id" in absolute.error_line()
    assert e.live() == e.live_version
    return res


def activate_ungated_bad(e: Env) -> Result:
    from ragcds.index.build import build_index
    from tests.fakes import FakeEmbedder

    # what an `index update` killed after its build and before its gates leaves behind
    vid = build_index(e.pdfs["truncated"], e.index, FakeEmbedder(64), "fake:64", activate=False).version_id
    res = e.cli("index", "activate", vid, "--index", e.index)
    assert e.live() == e.live_version
    assert {r["version_id"]: r["gates"] for r in versions.version_rows(e.index)}[vid] == "FAILED"
    fix = e.cli(*hint_args(res, **{"...": "reviewed: chapter 2 withdrawn"}))
    assert fix.code == 0 and e.live() == vid and versions.read_history(e.index)[-1]["forced"] is True
    return res


def tampered_chunks(e: Env) -> Result:
    chunks = e.index / "versions" / e.live_version / "chunks.jsonl"
    chunks.write_text(chunks.read_text().replace("750 mg", "950 mg"))
    res = e.cli("search", "anthrax ciprofloxacin", "--index", e.index)
    assert chunks.exists() and e.live() == e.live_version  # nothing deleted or switched behind the user's back
    assert e.cli(*hint_args(res)).code == 0 and e.live() == e.old_version and e.search_ok()
    return res


def verify_tampered(e: Env) -> Result:
    vdir = e.index / "versions" / e.live_version
    (vdir / "dense.faiss").write_bytes((vdir / "dense.faiss").read_bytes()[:-8] + b"\0" * 8)
    res = e.cli("index", "verify", "--index", e.index)
    assert "dense.faiss" in res.stdout and e.cli(*hint_args(res)).code == 0
    assert e.cli("index", "verify", "--index", e.index, "--all").code == 1  # the damaged one is still listed
    return res


def current_points_nowhere(e: Env) -> Result:
    shutil.rmtree(e.index / "versions" / e.live_version)
    res = e.cli("search", "anthrax", "--index", e.index)
    assert e.cli(*hint_args(res)).code == 0 and e.search_ok()
    return res


def only_version_damaged(e: Env) -> Result:
    for vid in (e.old_version,):
        shutil.rmtree(e.index / "versions" / vid)
    chunks = e.index / "versions" / e.live_version / "chunks.jsonl"
    chunks.write_text(chunks.read_text().replace("750 mg", "950 mg"))
    res = e.cli("search", "anthrax", "--index", e.index)
    assert e.cli(*hint_args(res, PDF=str(e.pdfs["ed2"]))).code == 0 and e.search_ok()
    assert versions.verify(e.index)["ok"]  # the live version is a fresh, intact build
    return res


def embedder_moved(e: Env) -> Result:
    from ragcds.index.build import build_index
    from tests.fakes import FakeEmbedder

    idx, old, new = e.tmp / "moved-index", e.tmp / "emb-old", e.tmp / "emb-new"
    old.mkdir()
    build_index(e.pdfs["ed1"], idx, FakeEmbedder(64), f"fakedir:{old}")
    old.rename(new)
    res = e.cli("search", "anthrax", "--index", idx)
    assert "--embedder PATH" in res.error_line()
    assert e.search_ok(idx, "--embedder", f"fakedir:{new}")
    assert e.cli("ask", QUESTION, "--index", idx, "--no-log", "--embedder", f"fakedir:{new}").code == 0
    assert e.cli("search", "anthrax", "--index", idx, RAGCDS_EMBEDDER=f"fakedir:{new}").code == 0
    return res


def embedder_mismatch(e: Env) -> Result:
    res = e.cli("search", "anthrax", "--index", e.index, "--embedder", "fake:32")
    assert e.search_ok(e.index, "--embedder", "fake:64")  # the first fix named
    assert e.cli(*hint_args(res, PDF=str(e.pdfs["ed2"]), REF="fake:32")).code == 0  # the second
    assert e.search_ok(e.index, "--embedder", "fake:32")
    return res


def stale_format(e: Env) -> Result:
    manifest = e.index / "versions" / e.live_version / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "format_version": 99}))
    res = e.cli("search", "anthrax", "--index", e.index)
    assert e.cli(*hint_args(res, PDF=str(e.pdfs["ed2"]))).code == 0 and e.search_ok()
    return res


def no_index(e: Env) -> Result:
    res = e.cli("search", "anthrax", "--index", e.tmp / "none", RAGCDS_EMBEDDER="fake:64")
    assert e.cli(*hint_args(res, PDF=str(e.pdfs["ed1"])), *FAKE).code == 0
    assert e.search_ok(e.tmp / "none")
    return res


def mistyped_index_admin(e: Env) -> Result:
    typo = e.tmp / "indx"
    res = e.cli("index", "gc", "--index", typo)
    assert e.cli("index", "activate", e.old_version, "--index", typo).code == 1
    assert not typo.exists()
    return res


def diff_missing_pdf(e: Env) -> Result:
    return e.cli("index", "diff", e.index, e.tmp / "errata.pdf")


def ask_home_not_writable(e: Env) -> Result:
    home = e.tmp / "home-is-a-file"
    home.write_text("not a folder")
    res = e.cli("ask", QUESTION, "--index", e.index, RAGCDS_HOME=str(home))
    assert e.answer_shown(res) and home.read_text() == "not a folder"
    return res


def ask_log_corrupt(e: Env) -> Result:
    home = e.tmp / "home"
    home.mkdir()
    (home / "logs.db").write_bytes(b"this is not sqlite" * 100)
    res = e.cli("ask", QUESTION, "--index", e.index, RAGCDS_HOME=str(home))
    assert e.answer_shown(res) and (home / "logs.db").read_bytes() == b"this is not sqlite" * 100
    fix = res.stderr[res.stderr.index("mv ") :].split("\n")[0]
    subprocess.run(shlex.split(fix), check=True)  # the printed fix, run as a user would
    again = e.cli("ask", QUESTION, "--index", e.index, RAGCDS_HOME=str(home))
    assert again.code == 0 and "NOT logged" not in again.stderr
    assert len(json.loads(e.cli("logs", "--json", RAGCDS_HOME=str(home)).stdout)) == 1  # one row: the second ask
    return res


def logs_escapes(e: Env) -> Result:
    from ragcds import audit
    from tests.test_audit import make_answer

    answer = make_answer()
    answer.question = "fever\x1b[2J\x1b]0;owned\x07 \x9b31m\u202eevil"
    home = e.tmp / "home"
    audit.log_answer(answer, path=home / "logs.db")
    res = e.cli("logs", RAGCDS_HOME=str(home))
    js = e.cli("logs", "--json", RAGCDS_HOME=str(home))
    for out in (res.stdout, js.stdout):
        assert not any(ch in out for ch in "\x1b\x07\x9b\u202e")
    assert json.loads(js.stdout)[0]["question"] == answer.question  # escaped, not altered
    return res


def hung_server(e: Env) -> Result:
    with socket.socket() as srv:  # accepts connections (kernel backlog) and never replies
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        url = f"http://127.0.0.1:{srv.getsockname()[1]}/v1"
        t = time.monotonic()
        res = e.cli("ask", QUESTION, "--no-rag", "--model", url, "--timeout", "1")
        assert time.monotonic() - t < 10
        t = time.monotonic()
        env_res = e.cli("ask", QUESTION, "--no-rag", "--model", url, RAGCDS_TIMEOUT="1")
        assert env_res.code == 1 and time.monotonic() - t < 10
    return res


CASES: list[Case] = [
    Case("`ingest` of a PDF path that does not exist", "one line naming the file", "the live version",
         1, "PDF not found", ingest_missing_pdf),
    Case("`ingest` of a wrong, shorter guideline PDF over a full index", "the gate table, `blocked:` and the "
         "command to activate it anyway", "the live version; the new one inactive, marked FAILED", 1,
         "blocked", ingest_wrong_pdf),
    Case("`ingest` of a PDF containing text aimed at a language model (\"IGNORE ALL PREVIOUS INSTRUCTIONS…\")",
         "the `instructions` gate FAILs with the phrase, section and page; `blocked:`", "the live version", 1,
         "blocked", ingest_injected_pdf),
    Case("`index activate ../../OTHER/versions/ID` or an absolute path", "one line: not a version id, and the "
         "command listing the ids", "the live version", 1, "not a version id", activate_traversal),
    Case("`index activate` of a version never gated (an `index update` killed before its gates) that fails "
         "them", "the gates run now; one line naming the failed gates and the `--force --reason` command",
         "the live version; the version inactive, marked FAILED", 1, "its gates ran now and failed",
         activate_ungated_bad),
    Case("live `chunks.jsonl` edited after the build (a dose changed)", "one line: the file does not match "
         "its sha256, and the rollback command to the previous intact version", "every file (the damaged "
         "version stays for inspection)", 1, "does not match the sha256", tampered_chunks),
    Case("`index verify` on a version with a damaged file", "each version with its damaged files; one line "
         "with the rollback command", "every file", 1, "dense.faiss", verify_tampered),
    Case("`CURRENT` names a version folder that was deleted", "one line with the rollback command",
         "the other versions", 1, "points at missing version", current_points_nowhere),
    Case("the only version is damaged", "one line with the rebuild command (with the embedder it was built "
         "with)", "every file", 1, "rebuild it from the guideline PDF", only_version_damaged),
    Case("the embedder folder moved after the build (`search`, `ask`)", "one line: pass `--embedder PATH` "
         "(or `RAGCDS_EMBEDDER`), which both commands accept", "the index", 1, "--embedder PATH",
         embedder_moved),
    Case("`search --embedder` other than the one the index was built with", "one line naming the right "
         "`--embedder` and the rebuild command", "the index", 1, "--embedder fake:64", embedder_mismatch),
    Case("index written by an incompatible format version", "one line with the rebuild command",
         "the index", 1, "rebuild it: ragcds ingest PDF", stale_format),
    Case("`search` with an `--index` that holds no index", "one line with the build command", "nothing to "
         "keep", 1, "no index at", no_index),
    Case("`index gc` / `index activate` with a mistyped `--index`", "one line: no index at that path",
         "the file system: no folder is created", 1, "no index at", mistyped_index_admin),
    Case("`index diff` with a PDF path that does not exist", "one line naming the missing PDF (not \"no "
         "index\")", "nothing written", 1, "PDF not found", diff_missing_pdf),
    Case("`ask` when `RAGCDS_HOME` cannot be written", "the answer, then one line: NOT logged, why, the fix",
         "the answer (exit 0: it was delivered)", 0, "NOT logged", ask_home_not_writable),
    Case("`ask` when `logs.db` is corrupt", "the answer, then one line: NOT logged, the `mv` command that "
         "starts a new log", "the answer; the damaged log untouched", 0, "is damaged", ask_log_corrupt),
    Case("`logs` of a question holding terminal escape sequences", "the text with control characters shown "
         "as `\\x1b`…, in `--json` as `\\u001b`…", "the stored text, unaltered", 0, "\\x1b[2J", logs_escapes),
    Case("`ask` against an OpenAI-compatible server that accepts and never replies", "after `--timeout` "
         "(`RAGCDS_TIMEOUT`, default 120 s; connecting 10 s): one line naming `--timeout`",
         "nothing to keep", 1, "--timeout", hung_server),
    Case("`index update` killed (SIGKILL) at any stage", "a rerun completes", "CURRENT on the old or the "
         "new version, never a mix", checked_by="tests/test_reindex_kill.py::test_kill_at_stage"),
    Case("searches while `index update` runs", "every search succeeds", "each search reads one version",
         checked_by="tests/test_reindex_concurrency.py"),
    Case("a build that fails halfway (chunker raises, disk full)", "the error", "the previous version "
         "answering; no partial version", checked_by="tests/test_index.py::test_atomic_write_failed_chunker_"
         "leaves_old_index_answering"),
]


def render() -> str:
    """docs/reliability.md, generated from CASES."""
    head = [
        "# Reliability: faults and bad input",
        "",
        "What the user sees and what is kept when something goes wrong. Generated from",
        "`tests/reliability_matrix.py` by `python -m tests.reliability_matrix --write`; `tests/test_reliability.py`",
        "runs every case (and, where the message names a fix, runs that fix) and checks this file is current.",
        "",
        "Exit codes: 1 for an expected failure (one line `error: ...` naming the fix), 2 for an unexpected one",
        "(one line; the traceback with `RAGCDS_DEBUG=1`). `ask` exits 0 when the answer was shown but could not",
        "be written to the audit log: the answer was delivered, and the one `warning:` line on stderr says it",
        "was not logged and why (scripts that need the log can check stderr or `ragcds logs`).",
        "",
        "| case | exit | what the user sees | what is kept | checked by |",
        "|---|---|---|---|---|",
    ]
    rows = []
    for c in CASES:
        exit_code = "" if c.exit is None else str(c.exit)
        sees = c.sees + (f" (`{c.needle}`)" if c.needle and c.needle not in c.sees else "")
        check = c.checked_by or f"tests/test_reliability.py ({c.run.__name__})"
        rows.append(f"| {c.case} | {exit_code} | {sees} | {c.kept} | `{check}` |")
    return "\n".join(head + rows) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        DOC.write_text(render(), encoding="utf-8")
        print(f"wrote {DOC}")
    else:
        sys.stdout.write(render())
