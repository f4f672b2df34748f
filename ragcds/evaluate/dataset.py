"""Evaluation question sets: loading and validation of the JSONL schema in ../shared/eval/README.md.

Every problem is reported as one line naming the file, the line number and the field, e.g.
``dev.jsonl:12: field 'gold_pages': expected a list of positive integers, got "136"``.
Fields beyond the schema (an evaluator's ``source``, ``notes``, ``author``, ...) are accepted and kept in
``Question.extra``: runs copy them into their records and the report lists them once as not scored.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ragcds.errors import BadQuestionFile
from ragcds.generate.base import TRIAGE_LEVELS

KINDS: tuple[str, ...] = ("fact", "vignette", "treatment", "out_of_scope")
FIELDS: tuple[str, ...] = (
    "id",
    "question",
    "kind",
    "gold_pages",
    "gold_section",
    "gold_title",
    "key_facts",
    "triage",
)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    kind: str
    gold_pages: tuple[int, ...]
    gold_section: str
    gold_title: str
    key_facts: tuple[tuple[str, ...], ...]
    triage: str | None
    # fields beyond the schema, kept as written (not scored; excluded from equality and hashing)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def chapter(self) -> str:
        """The UCG chapter (first number of the gold section), '-' when there is none."""
        return self.gold_section.split(".")[0] if self.gold_section else "-"


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_str_list(v: object) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) and s.strip() for s in v)


def check_record(obj: object) -> list[str]:
    """Problems with one parsed line, each as "field 'name': what is wrong" (empty list when valid)."""
    if not isinstance(obj, dict):
        return [f"expected a JSON object, got {type(obj).__name__}"]
    errs: list[str] = []
    unknown = sorted(set(obj) - set(FIELDS))
    for name in FIELDS:
        if name not in obj:
            near = difflib.get_close_matches(name, unknown, n=1, cutoff=0.8)
            errs.append(f"field '{name}': missing" + (f" (is '{near[0]}' a misspelling of it?)" if near else ""))
    if errs:
        return errs
    for name in ("id", "question", "kind"):
        if not isinstance(obj[name], str) or not obj[name].strip():
            errs.append(f"field '{name}': expected a non-empty string, got {_short(obj[name])}")
    for name in ("gold_section", "gold_title"):
        if not isinstance(obj[name], str):
            errs.append(f"field '{name}': expected a string, got {_short(obj[name])}")
    kind = obj["kind"]
    if isinstance(kind, str) and kind.strip() and kind not in KINDS:
        errs.append(f"field 'kind': {_short(kind)} is not one of {', '.join(KINDS)}")
    pages = obj["gold_pages"]
    if not (
        isinstance(pages, list)
        and all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in pages)
    ):
        errs.append(f"field 'gold_pages': expected a list of positive integers, got {_short(pages)}")
    elif kind == "out_of_scope" and pages:
        errs.append("field 'gold_pages': must be empty for kind out_of_scope")
    elif kind in KINDS and kind != "out_of_scope" and not pages:
        errs.append(f"field 'gold_pages': empty, but kind {kind} needs at least one gold page")
    facts = obj["key_facts"]
    if not (isinstance(facts, list) and all(_is_str_list(f) and f for f in facts)):
        errs.append(
            f"field 'key_facts': expected a list of non-empty lists of non-empty strings, got {_short(facts)}"
        )
    triage = obj["triage"]
    if triage is not None and triage not in TRIAGE_LEVELS:
        errs.append(f"field 'triage': {_short(triage)} is not null or one of {', '.join(TRIAGE_LEVELS)}")
    return errs


def validate_lines(lines: list[str], name: str = "<questions>") -> list[str]:
    """All problems in a file's lines, one message per problem (blank lines are allowed)."""
    errs: list[str] = []
    seen: dict[str, int] = {}
    for no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errs.append(f"{name}:{no}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        problems = check_record(obj)
        errs.extend(f"{name}:{no}: {p}" for p in problems)
        if not problems:
            qid = obj["id"]
            if qid in seen:
                errs.append(
                    f"{name}:{no}: field 'id': duplicate id {_short(qid)} (first on line {seen[qid]})"
                )
            seen.setdefault(qid, no)
    if not seen and not errs:
        errs.append(f"{name}: no questions (the file is empty)")
    return errs


def _read_lines(path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise BadQuestionFile(f"{path}: no such file (a questions file is JSONL, see docs/evaluation.md)")
    return path.read_text(encoding="utf-8").splitlines()


def validate_file(path: Path) -> list[str]:
    """Problems in a questions file (empty list when it is valid)."""
    return validate_lines(_read_lines(path), Path(path).name)


def load_questions(path: Path, limit: int | None = None) -> list[Question]:
    """Load and validate a questions file; raises BadQuestionFile with the first problem."""
    lines = _read_lines(path)
    errs = validate_lines(lines, Path(path).name)
    if errs:
        more = f" (and {len(errs) - 1} more; run `ragcds eval validate {path}`)" if len(errs) > 1 else ""
        raise BadQuestionFile(errs[0] + more)
    out = []
    for line in lines:
        if not line.strip():
            continue
        o = json.loads(line)
        out.append(
            Question(
                id=o["id"],
                question=o["question"],
                kind=o["kind"],
                gold_pages=tuple(o["gold_pages"]),
                gold_section=o["gold_section"],
                gold_title=o["gold_title"],
                key_facts=tuple(tuple(f) for f in o["key_facts"]),
                triage=o["triage"],
                extra={k: v for k, v in o.items() if k not in FIELDS},
            )
        )
    return out[:limit] if limit else out


def extra_fields(questions: Iterable[Question]) -> list[str]:
    """Names of the fields beyond the schema that any question carries (sorted)."""
    return sorted({k for q in questions for k in q.extra})

