"""The uplift report: OUT/report.md and PNG plots, rendered only from OUT/results.json and OUT/items.jsonl
(plus an optional hand-written OUT/notes.md that is included verbatim). ``ragcds eval report OUT`` reruns it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ragcds.evaluate.compare import verdict
from ragcds.evaluate.metrics import ANSWER_METRICS, RECALL_KS, RETRIEVAL_METRICS
from ragcds.evaluate.runfiles import read_items
from ragcds.evaluate.stats import fmt_ci

PLOT_METRICS = (
    "key_fact_recall",
    "unsupported_rate",
    "has_number_error",
    "citation_precision",
    "parse_ok",
    "triage_exact",
    "scope_safe",
)
SEED_NOTE = (
    "Reference point: the seed project's MedGemma 1.5 4B fine-tune reached about **3.02/5** content quality "
    "on its held-out set against a **3.43** gate, scored by an LLM judge (Gemini-as-judge rubric). This "
    "evaluation is judge-free by default, reproducible from `results.json`, and measured per stage "
    "(retrieval, grounding, numbers, citations, format, triage, scope), so the two are not directly "
    "comparable."
)


def _modes(results: dict) -> list[str]:
    return list(results["modes"])


def render_markdown(results: dict, items: list[dict], notes: str = "") -> str:
    modes = _modes(results)
    L: list[str] = _setup(results, items, modes)
    if notes.strip():
        L.append("## Notes\n")
        L.append(notes.strip() + "\n")
    L.extend(_retrieval_table(results))
    L.extend(_answers_table(results, modes))
    L.extend(_uplift(results.get("uplift", {})))
    L.extend(_kind_table(results, modes))
    L.append("\n### Key-fact recall by UCG chapter\n")
    L.append("![key-fact recall by chapter](chapter_key_facts.png)\n")
    L.append("## Time and errors\n")
    L.append("| mode | items | total s | mean s/item | errors |")
    L.append("|---|---|---|---|---|")
    for m in modes:
        t = results["timings"][m]
        L.append(f"| {m} | {t['items']} | {t['total_s']} | {t['mean_s']} | {results['errors'][m]} |")
    L.append("")
    L.append(_item_table(items, modes))
    return "\n".join(L) + "\n"


def _setup(results: dict, items: list[dict], modes: list[str]) -> list[str]:
    cfg = results["config"]
    L = [f"# ragcds evaluation: {Path(cfg['questions']).name}\n", SEED_NOTE + "\n", "## Setup\n"]
    L.append(
        f"- questions: `{cfg['questions']}` (sha256 `{cfg['questions_sha256'][:12]}`), "
        f"{results['n_questions']} evaluated"
    )
    L.append(
        f"- modes: {', '.join(modes)}; model: `{cfg.get('model') or '-'}` (backend {cfg.get('backend')})"
    )
    L.append(
        f"- format {cfg['format']}, k={cfg['k']}, policy {cfg['policy']}, max_new_tokens "
        f"{cfg['max_new_tokens']}, temperature {cfg['temperature']}, retrieval {cfg['retrieval_mode']}"
    )
    L.append(f"- index version `{cfg.get('index_version') or '-'}`, ragcds {cfg.get('ragcds_version')}")
    extra = sorted({k for it in items for k in it.get("extra") or {}})
    if extra:
        L.append(
            "- question fields not used by the metrics: "
            + ", ".join(f"`{k}`" for k in extra)
            + " (kept per item under `extra` in items.jsonl)"
        )
    L.append(
        "- intervals: 95% percentile bootstrap, 2000 resamples, fixed seed; n = items where the metric "
        "applies. Metric rules: docs/evaluation.md.\n"
    )
    return L


def _retrieval_table(results: dict) -> list[str]:
    kinds = list(results["retrieval"]["by_kind"])
    L = ["## Retrieval (shared by all modes)\n"]
    L.append("| metric | overall | " + " | ".join(kinds) + " |")
    L.append("|---|---|" + "---|" * len(kinds))
    for key, label, _ in RETRIEVAL_METRICS:
        row = [fmt_ci(results["retrieval"]["overall"][key])]
        row += [fmt_ci(results["retrieval"]["by_kind"][k][key]) for k in kinds]
        L.append(f"| {label} | " + " | ".join(row) + " |")
    L.append("\n![recall@k](recall_at_k.png)\n")
    return L


def _answers_table(results: dict, modes: list[str]) -> list[str]:
    L = ["## Answers by mode\n"]
    L.append("| metric | better | " + " | ".join(modes) + " |")
    L.append("|---|---|" + "---|" * len(modes))
    for key, label, higher in ANSWER_METRICS:
        stats = [results["modes"][m][key] for m in modes]
        if all(s["n"] == 0 for s in stats):
            continue
        L.append(
            f"| {label} | {'higher' if higher else 'lower'} | " + " | ".join(fmt_ci(s) for s in stats) + " |"
        )
    L.append("\n![metrics by mode](metrics_by_mode.png)\n")
    return L


def _kind_table(results: dict, modes: list[str]) -> list[str]:
    L = ["### Key-fact recall and unsupported share by question kind\n"]
    L.append("| kind | " + " | ".join(f"{m}: key facts | {m}: unsupported" for m in modes) + " |")
    L.append("|---|" + "---|---|" * len(modes))
    for kd in results["retrieval"]["by_kind"]:
        cells = []
        for m in modes:
            s = results["by_kind"][m].get(kd, {})
            cells += [
                fmt_ci(s.get("key_fact_recall", {"mean": None})),
                fmt_ci(s.get("unsupported_rate", {"mean": None})),
            ]
        L.append(f"| {kd} | " + " | ".join(cells) + " |")
    return L


def _uplift(uplift: dict) -> list[str]:
    if not uplift:
        return []

    labels = {k: label for k, label, _ in ANSWER_METRICS}
    L = [
        "### Uplift (paired on question ids, B − A, 95% paired bootstrap)\n",
        "| A → B | metric | delta [95% CI] | n | significant |",
        "|---|---|---|---|---|",
    ]
    for pair, deltas in uplift.items():
        for key, d in deltas.items():
            L.append(
                f"| {pair.replace('->', ' → ')} | {labels.get(key, key)} | {d['delta']:+.2f} "
                f"[{d['lo']:+.2f}, {d['hi']:+.2f}] | {d['n']} | {verdict(d) or 'no'} |"
            )
    return L + [""]


def _item_table(items: list[dict], modes: list[str]) -> str:
    by = {(it["mode"], it["id"]): it for it in items}
    ids = sorted({it["id"] for it in items})
    L = [
        "## Per item\n",
        "first gold hit rank (top 10); per mode: key-fact recall / unsupported statements / "
        "policy (E = error).\n",
        "| id | kind | hit@ | " + " | ".join(modes) + " |",
        "|---|---|---|" + "---|" * len(modes),
    ]
    for i in ids:
        first = next(it for it in items if it["id"] == i)
        cells = []
        for m in modes:
            it = by.get((m, i))
            if it is None:
                cells.append("")
            elif it.get("error"):
                cells.append("E")
            else:
                mt = it["metrics"]
                kfr = "-" if mt["key_fact_recall"] is None else f"{mt['key_fact_recall']:.2f}"
                cells.append(f"{kfr} / {mt['unsupported']} / {it['answer']['policy']}")
        rank = first["retrieval"].get("first_hit_rank")
        L.append(f"| {i} | {first['kind']} | {rank if rank else '-'} | " + " | ".join(cells) + " |")
    return "\n".join(L) + "\n"


def _save(fig, path: Path, meta: dict) -> Path:
    """Lay out, write (no timestamp metadata, so reruns give identical files) and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, metadata=meta)
    plt.close(fig)
    return path


def write_plots(results: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    modes = _modes(results)
    meta = {"Software": None}
    paths = []
    # 1. metric by mode with CI error bars
    keys = [k for k in PLOT_METRICS if any(results["modes"][m][k]["n"] for m in modes)]
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=80)
    width = 0.8 / max(len(modes), 1)
    x = np.arange(len(keys))
    for j, m in enumerate(modes):
        st = [results["modes"][m][k] for k in keys]
        mean = np.array([s["mean"] if s["mean"] is not None else np.nan for s in st])
        lo = np.array([s["lo"] if s["lo"] is not None else np.nan for s in st])
        hi = np.array([s["hi"] if s["hi"] is not None else np.nan for s in st])
        ax.bar(
            x + j * width,
            np.nan_to_num(mean),
            width,
            label=m,
            yerr=np.nan_to_num(np.vstack([mean - lo, hi - mean])),
            capsize=2,
        )
    ax.set_xticks(
        x + width * (len(modes) - 1) / 2, [k.replace("_", " ") for k in keys], rotation=20, fontsize=7
    )
    ax.set_ylim(0, 1.05)
    ax.set_title("Answer metrics by mode (95% bootstrap CI)", fontsize=9)
    ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir / "metrics_by_mode.png", meta))
    # 2. recall@k curve
    fig, ax = plt.subplots(figsize=(4.5, 3), dpi=80)
    curve = results["retrieval"]["recall_curve"]
    ks = [k for k in RECALL_KS if curve.get(str(k)) is not None]
    ax.plot(ks, [curve[str(k)] for k in ks], marker="o")
    ax.set_xlabel("k", fontsize=8)
    ax.set_ylabel("recall@k", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("Retrieval: gold page in top k", fontsize=9)
    paths.append(_save(fig, out_dir / "recall_at_k.png", meta))
    # 3. per-chapter key-fact recall by mode
    chapters = sorted({c for m in modes for c in results["by_chapter"][m]}, key=lambda c: (len(c), c))
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=80)
    x = np.arange(len(chapters))
    for j, m in enumerate(modes):
        vals = [results["by_chapter"][m].get(c, {}).get("mean") for c in chapters]
        ax.bar(x + j * width, [v if v is not None else 0 for v in vals], width, label=m)
    ax.set_xticks(x + width * (len(modes) - 1) / 2, chapters, fontsize=7)
    ax.set_xlabel("UCG chapter", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("Key-fact recall by chapter", fontsize=9)
    ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir / "chapter_key_facts.png", meta))
    return paths


def write_report(out_dir: Path, plots: bool = True) -> Path:
    """Render OUT/report.md (and the plots) from OUT/results.json and OUT/items.jsonl."""

    out_dir = Path(out_dir)
    results = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    items = read_items(out_dir / "items.jsonl")
    notes_path = out_dir / "notes.md"
    notes = notes_path.read_text(encoding="utf-8") if notes_path.exists() else ""
    path = out_dir / "report.md"
    path.write_text(render_markdown(results, items, notes), encoding="utf-8")
    if plots:
        write_plots(results, out_dir)
    return path
