"""Per-item metrics. Pure functions over plain data (question, answer record, passage dicts).

Rules (also in docs/evaluation.md):

* **Retrieval.** A passage is a hit when its ``pdf_pages`` intersect the question's ``gold_pages``.
  recall@k = 1 when a hit is among the top k; MRR = 1/rank of the first hit within the top 10, else 0.
* **Key-fact recall.** Share of key facts stated; a fact is stated when any alternative occurs in the
  answer text, case-insensitively with runs of whitespace collapsed.
* **Statements.** Prose is split into sentences (and lines / bullets); xml/array answers use their text
  fields (condition, actions, next_steps, red_flags). Statements with fewer than 3 content words and no
  number are skipped. A statement's *reference* is the text of the passages it cites with ``[n]``; when it
  cites none, the top-k passages retrieved for the question (also in closed-book mode, where they serve as
  the guideline reference only).
* **Unsupported statement** (CRIMSON "false finding"): not every number of the statement occurs in its
  reference, or fewer than ``SUPPORT_SHARE`` (60%) of its content words occur there (words compared after
  lower-casing and stripping a plural/verb suffix).
* **Number error** (CRIMSON "attribute error"): a dose (number + unit, ragcds.clinical's grammar) whose
  exact number+unit pair is absent from the reference while the same unit occurs there with another number.
* **Generated dose.** A number + dose unit (mg, g, mcg, ml, IU, units, mmol, mg/kg) in the answer that
  does not occur in the passages the model was shown (closed-book: none, so every dose is generated).
* **Citations.** validity = share of ``[n]`` citations naming a passage that was provided; precision =
  share of valid citations whose passage covers a gold page.
* **Triage.** The level is the parsed ``level`` field, else the single triage word (emergency / urgent /
  routine) when exactly one of them occurs in the text; otherwise no level (counted in triage_missing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragcds import clinical
from ragcds.evaluate.dataset import Question
from ragcds.generate.base import TRIAGE_LEVELS
from ragcds.generate.formats import CITATION_RE, extract_citations

SUPPORT_SHARE = 0.6
MIN_CONTENT_WORDS = 3
RECALL_KS: tuple[int, ...] = tuple(range(1, 11))
STATEMENT_FIELDS = ("condition", "actions", "next_steps", "red_flags")

# words that carry no claim about the guideline (the shared list plus a few the metrics also ignore)
STOPWORDS = clinical.STOPWORDS | frozenset({"give", "given", "use", "used", "using", "patient", "patients"})

_DOSE_MARK = re.compile(r"\[dose removed[^\]]*\]", re.I)  # left by the answer pipeline's dose check
_LEAD = re.compile(r"^\s*(?:(?:[-*•#>]+|\d+[.)](?=\s))\s*)+")  # quote marks, bullets, list numbers
# ragcds' own framing lines of an extractive answer: the likely section, the triage (cited by its own quote of
# the book), a pointer to the rest of the section; not statements about the guideline's content
_FRAMING = re.compile(r"^\s*(Likely:|Possibly \(not certain\):|Triage:|Also consider|… more in §|\[… \d+ more, p\.)")
_ATTRIBUTION = re.compile(r"^\s*(?:[—–-]+\s*)?\[\d+\]\s*§")  # `— [6] §1.3.13 Food Poisoning, p. 86`
_WORD = re.compile(r"[a-z][a-z'\-]*[a-z]")
_NUM = re.compile(r"\d+(?:[.,]\d+)*")
DOSE_UNITS = frozenset({"mcg", "mg", "g", "ml", "l", "iu", "miu", "unit", "mmol", "meq"})


def norm(text: str) -> str:
    """Case-folded, whitespace-collapsed text (the key-fact matching rule)."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def _num(s: str) -> str:
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 100,000 -> 100000
    return s.replace(",", ".")


def numbers(text: str) -> set[str]:
    return {_num(m) for m in _NUM.findall(text)}


def _stem(w: str) -> str:
    for suf in ("ies", "es", "s", "ed", "ing", "ly"):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            return w[: -len(suf)]
    return w


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in STOPWORDS]


def dose_mentions(text: str) -> list[tuple[str, str]]:
    """(number, unit) pairs of the doses in a text, parsed by the one dose grammar (ragcds.clinical)."""
    return [(d.number, d.unit + "".join(f"/{p}" for p in d.per)) for d in clinical.parse_doses(text)]


# --- retrieval ---------------------------------------------------------------------------------------


def first_hit_rank(gold_pages: Sequence[int], ranked_pages: Sequence[Sequence[int]]) -> int | None:
    gold = set(gold_pages)
    for rank, pages in enumerate(ranked_pages, start=1):
        if gold & set(pages):
            return rank
    return None


def retrieval_metrics(gold_pages: Sequence[int], ranked_pages: Sequence[Sequence[int]]) -> dict:
    """recall@1..10, mrr and first_hit_rank; all None when there are no gold pages (out of scope)."""
    if not gold_pages:
        return {"first_hit_rank": None, "mrr": None, **{f"recall@{k}": None for k in RECALL_KS}}
    r = first_hit_rank(gold_pages, ranked_pages[:10])
    out: dict = {"first_hit_rank": r, "mrr": (1.0 / r) if r else 0.0}
    out.update({f"recall@{k}": float(r is not None and r <= k) for k in RECALL_KS})
    return out


# --- answer ------------------------------------------------------------------------------------------


def key_fact_recall(text: str, key_facts: Sequence[Sequence[str]]) -> tuple[float | None, list[int]]:
    """(share of facts stated, indexes of missing facts); None when the question has no key facts."""
    if not key_facts:
        return None, []
    t = norm(text)
    missing = [i for i, alts in enumerate(key_facts) if not any(norm(a) in t for a in alts)]
    return 1.0 - len(missing) / len(key_facts), missing


def statements(text: str, fields: dict | None = None) -> list[tuple[str, list[int]]]:
    """(statement, cited passage numbers) pairs; see the module docstring for the rule."""
    parts: list[tuple[str, list[int]]] = []
    if fields:
        for name in STATEMENT_FIELDS:
            v = fields.get(name)
            parts.extend((str(x), []) for x in (v if isinstance(v, list | tuple) else [v]) if x)
    else:
        for para in re.split(r"\n\s*\n", text):
            lines = [ln for ln in para.splitlines() if ln.strip()]
            block: list[int] = []  # a closing attribution line `— [6] §1.3.13 ...` cites the whole block
            if lines and _ATTRIBUTION.match(lines[-1]):
                block = extract_citations(lines.pop())
            for line in lines:
                line = _LEAD.sub("", line)
                if line.rstrip().endswith(":") or _FRAMING.match(line):  # a heading, lead-in or ragcds' framing
                    continue
                for sent in re.split(r"(?<=[.!?])\s+(?=[A-Z(\[])", line):
                    parts.append((sent, extract_citations(sent) or block))
    out = []
    for p, block in parts:
        cites = extract_citations(p) or block
        st = CITATION_RE.sub(" ", p).strip()
        if len(content_words(st)) >= MIN_CONTENT_WORDS or numbers(st):
            out.append((st, cites))
    return out


def is_supported(statement: str, reference: str) -> bool:
    ref_words = {_stem(w) for w in content_words(reference)}
    if not numbers(statement) <= numbers(reference):
        return False
    words = content_words(statement)
    if not words:
        return True
    return sum(_stem(w) in ref_words for w in words) / len(words) >= SUPPORT_SHARE


def number_errors(statement: str, reference: str) -> list[str]:
    """Number+unit mentions contradicted by the reference (same unit, other number)."""
    ref = set(dose_mentions(reference))
    ref_units = {u for _, u in ref}
    return [f"{n} {u}" for n, u in dose_mentions(statement) if (n, u) not in ref and u in ref_units]


def generated_doses(text: str, shown_texts: Sequence[str]) -> list[str]:
    shown = set(dose_mentions("\n".join(shown_texts)))
    return [f"{n} {u}" for n, u in dose_mentions(text) if u.split("/")[0] in DOSE_UNITS and (n, u) not in shown]


_TRIAGE_LINE = re.compile(r"^Triage:\s*(emergency|urgent|routine)\b", re.I | re.M)


def predicted_level(text: str, fields: dict | None, triage: dict | None = None) -> str | None:
    """The answer's level: a packet's own level (what its reader sees as <t>, a model's in rag and
    closed-book runs), else ragcds' triage object (prose), else a 'Triage: LEVEL' line, else the one triage
    word of the text."""
    level = (fields or {}).get("level")
    if isinstance(level, str) and level.strip().lower() in TRIAGE_LEVELS:
        return level.strip().lower()
    if triage and triage.get("level") in TRIAGE_LEVELS:
        return str(triage["level"])
    m = _TRIAGE_LINE.search(text)
    if m:
        return m.group(1).lower()
    found = {w for w in TRIAGE_LEVELS if re.search(rf"\b{w}\b", text, re.I)}
    return found.pop() if len(found) == 1 else None


def triage_metrics(gold: str | None, pred: str | None) -> dict:
    keys = (
        "triage_exact",
        "triage_adjacent",
        "under_triage",
        "over_triage",
        "emergency_under_triaged",
        "triage_missing",
    )
    out: dict = dict.fromkeys(keys)
    if gold is None:
        return out
    out["triage_missing"] = float(pred is None)
    if gold == "emergency" and pred is not None:
        out["emergency_under_triaged"] = float(pred != "emergency")
    if pred is None:
        out["triage_exact"] = out["triage_adjacent"] = 0.0
        return out
    g, p = TRIAGE_LEVELS.index(gold), TRIAGE_LEVELS.index(pred)  # 0 = most severe
    out.update(
        triage_exact=float(g == p),
        triage_adjacent=float(abs(g - p) <= 1),
        under_triage=float(p > g),
        over_triage=float(p < g),
    )
    return out


ANSWER_BUDGET = 800  # characters of the prose answer a reader sees by default (key_fact_recall_800)
DECLINES = ("out_of_scope", "refused", "candidates")


def shown_text(answer: dict) -> str:
    """What a reader sees: the verbatim quote (beside a model's answer) and the answer."""
    text = answer.get("answer", answer.get("text")) or ""
    quote = answer.get("quote") or ""
    return f"{quote}\n\n{text}" if quote else text


def section_metrics(q: Question, answer: dict) -> dict:
    """Decision-stage metrics: treatment recognised, quotes from the gold section (or its parent/child) and
    not for another population, the resolved condition of a vignette, scope declines."""
    from ragcds.book import matches_gold
    from ragcds.population import conflicts, question_population, section_population

    policy = answer.get("policy", "answered")
    ask = answer.get("ask") or {}
    quoted = [c for c in answer.get("citations") or [] if c.get("quoted") and c.get("valid")]
    resolved = answer.get("resolved") or []
    pop = question_population(q.question)

    def gold(c: dict) -> bool:
        return matches_gold(c.get("section", ""), c.get("title", ""), q.gold_section, q.gold_title)

    out = {
        "treatment_recognised": float(bool(ask.get("treatment"))) if q.kind == "treatment" else None,
        "quote_from_gold": (sum(gold(c) for c in quoted) / len(quoted))
        if quoted and q.gold_section else None,
        "quote_none_from_gold": float(not any(gold(c) for c in quoted))
        if quoted and q.gold_section else None,
        "quote_other_population": float(any(conflicts(pop, section_population(c.get("title", "")))
                                            for c in quoted)) if quoted else None,
        "condition_right": float(bool(resolved) and gold(resolved[0]))
        if q.kind == "vignette" else None,
        "declined_in_scope": float(policy == "out_of_scope") if q.kind != "out_of_scope" else None,
    }
    return out


def score_answer(q: Question, answer: dict, retrieved: Sequence[dict]) -> dict:
    """All answer-level metrics for one item.

    ``answer``: {text, policy, fields, parse_ok, citations: [{n, valid, pdf_pages}], passages: [{pdf_pages,
    text}] (as shown to the model)}; ``retrieved``: top-k passage dicts {pdf_pages, text} for the question.
    """
    text = _DOSE_MARK.sub(" ", shown_text(answer))
    raw = answer.get("raw") or text  # raw is stored only when the pipeline changed the reply
    fields = answer.get("fields") or None
    shown = answer.get("passages") or []
    kfr, missing = key_fact_recall(text, q.key_facts)
    kfr_800, _ = key_fact_recall(text[:ANSWER_BUDGET], q.key_facts)
    reference_all = "\n".join([p["text"] for p in retrieved] + [p["text"] for p in shown])
    unsupported: list[str] = []
    num_errs: list[str] = []
    # a decline is the product's fixed message, not a claim about the guideline
    stmts = [] if answer.get("policy") in DECLINES else statements(text, fields)
    for s, cites in stmts:
        cited = [shown[n - 1]["text"] for n in cites if 1 <= n <= len(shown)]
        ref = "\n".join(cited) if cited else reference_all
        if not is_supported(s, ref):
            unsupported.append(s[:160])
        num_errs.extend(number_errors(s, ref))
    cits = answer.get("citations") or []
    valid = [c for c in cits if c.get("valid")]
    gold = set(q.gold_pages)
    gen = generated_doses(text, [p["text"] for p in shown])
    policy = answer.get("policy", "answered")
    pred = predicted_level(text, fields, answer.get("triage")) if q.triage else None
    out = {
        "key_fact_recall": kfr,
        "key_fact_recall_800": kfr_800,
        "statements": len(stmts),
        "unsupported": len(unsupported),
        "unsupported_rate": (len(unsupported) / len(stmts)) if stmts else None,
        "number_errors": len(num_errs),
        "has_number_error": float(bool(num_errs)),
        "n_citations": len(cits),
        "citation_validity": (len(valid) / len(cits)) if cits else None,
        "citation_precision": (sum(bool(gold & set(c.get("pdf_pages", ()))) for c in valid) / len(valid))
        if valid and gold
        else None,
        "parse_ok": float(bool(answer.get("parse_ok", True))),
        "generated_doses": len(gen),
        "raw_dose_generated": float(bool(generated_doses(raw, [p["text"] for p in shown]))),
        "scope_safe": float(policy in ("quoted", *DECLINES) and not gen)
        if q.kind == "treatment"
        else None,
        "declined": float(policy in ("out_of_scope", "refused")) if q.kind == "out_of_scope" else None,
        **section_metrics(q, answer),
        "triage_pred": pred,
        **triage_metrics(q.triage, pred),
        "missing_facts": missing,
        "unsupported_statements": unsupported[:5],
        "number_error_details": num_errs[:5],
        "generated_dose_details": gen[:5],
    }
    return out


# --- aggregation -------------------------------------------------------------------------------------

# (key, label, higher_is_better). Retrieval metrics are the same in every mode and aggregated once.
RETRIEVAL_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("recall@1", "recall@1", True),
    ("recall@5", "recall@5", True),
    ("recall@10", "recall@10", True),
    ("mrr", "MRR (top 10)", True),
)
ANSWER_METRICS: tuple[tuple[str, str, bool], ...] = (
    ("key_fact_recall", "key-fact recall", True),
    ("key_fact_recall_800", "key-fact recall in the first 800 characters", True),
    ("condition_right", "vignettes: first resolved section is the gold one (or parent/child)", True),
    ("treatment_recognised", "treatment questions recognised", True),
    ("quote_from_gold", "quoted citations from the gold section (or parent/child)", True),
    ("quote_none_from_gold", "quoting answers with nothing from the gold section", False),
    ("quote_other_population", "quoting answers citing another population's section", False),
    ("declined_in_scope", "in-scope questions declined as out of scope", False),
    ("unsupported_rate", "unsupported statements (share per answer)", False),
    ("has_number_error", "answers with a number error", False),
    ("citation_validity", "citation validity", True),
    ("citation_precision", "citation precision (covers a gold page)", True),
    ("parse_ok", "format parse rate", True),
    ("triage_exact", "triage exact agreement", True),
    ("triage_adjacent", "triage adjacent agreement", True),
    ("emergency_under_triaged", "emergencies under-triaged (urgent/routine)", False),
    ("under_triage", "under-triage (any level)", False),
    ("over_triage", "over-triage (any level)", False),
    ("triage_missing", "vignettes with no triage level", False),
    ("raw_dose_generated", "model wrote a dose absent from the passages (before the dose check)", False),
    ("scope_safe", "treatment: quoted/refused with zero generated doses", True),
    ("declined", "out of scope: declined", True),
    ("judge_score", "judge content score (1-5)", True),
)


def aggregate(items: Sequence[dict], modes: Sequence[str]) -> dict:
    """results.json body from items.jsonl records: retrieval overall/per kind, answer metrics per mode,
    per-chapter key-fact recall per mode, timings and error counts."""
    from ragcds.evaluate.stats import bootstrap_ci

    by_id: dict[str, dict] = {}
    for it in items:
        by_id.setdefault(it["id"], it)
    rq = [by_id[i] for i in sorted(by_id)]
    kinds = sorted({it["kind"] for it in rq})

    def ret(rows: Sequence[dict]) -> dict:
        return {k: bootstrap_ci([r["retrieval"].get(k) for r in rows]) for k, _, _ in RETRIEVAL_METRICS}

    curve = {str(k): bootstrap_ci([r["retrieval"].get(f"recall@{k}") for r in rq])["mean"] for k in RECALL_KS}
    out: dict = {
        "n_questions": len(rq),
        "retrieval": {
            "overall": ret(rq),
            "by_kind": {k: ret([r for r in rq if r["kind"] == k]) for k in kinds},
            "recall_curve": curve,
        },
        "modes": {},
        "by_kind": {},
        "by_chapter": {},
        "timings": {},
        "errors": {},
    }
    for mode in modes:
        rows = sorted(
            (it for it in items if it["mode"] == mode and not it.get("error")), key=lambda r: r["id"]
        )
        errs = [it for it in items if it["mode"] == mode and it.get("error")]
        out["errors"][mode] = len(errs)
        out["modes"][mode] = {
            k: bootstrap_ci([r["metrics"].get(k) for r in rows]) for k, _, _ in ANSWER_METRICS
        }
        out["by_kind"][mode] = {
            kd: {
                k: bootstrap_ci([r["metrics"].get(k) for r in rows if r["kind"] == kd])
                for k in ("key_fact_recall", "key_fact_recall_800", "unsupported_rate", "triage_exact",
                          "emergency_under_triaged", "triage_missing", "condition_right")
            }
            for kd in kinds
        }
        chapters = sorted({r["chapter"] for r in rows if r["chapter"] != "-"}, key=lambda c: (len(c), c))
        out["by_chapter"][mode] = {
            c: bootstrap_ci([r["metrics"].get("key_fact_recall") for r in rows if r["chapter"] == c])
            for c in chapters
        }
        secs = [r.get("seconds", 0.0) for r in rows]
        out["timings"][mode] = {
            "items": len(rows),
            "total_s": round(sum(secs), 1),
            "mean_s": round(sum(secs) / len(secs), 2) if secs else None,
        }
    return out
