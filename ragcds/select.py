"""Which blocks of a section answer what the question asks, within a character budget.

A part ("features", "management", ...) is taken from the section's own structure (ragcds.book). When the part
does not fit the budget, its sub-parts (the blocks under one sub-heading: "Management of severe malaria",
"Dosage of IV artesunate") are ranked by the question's words, the best sub-part is shown first from its
start, and the blocks are shown in book order. Blocks are never cut.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

from ragcds import clinical
from ragcds.book import Block, BookSection
from ragcds.question import asks_first_steps, test_results

# Where to look when a section has no part of that name (in order).
FALLBACK_PARTS: dict[str, tuple[str, ...]] = {
    "features": ("features", "intro"),
    "investigations": ("investigations",),
    "management": ("management",),
    "referral": ("referral",),
    "prevention": ("prevention",),
    "causes": ("causes", "intro"),
    "differential": ("differential",),
    "complications": ("complications",),
    "intro": ("intro", "features"),
}
REFERRAL_WORDS = re.compile(r"\b(refer\w*|danger signs?|admi(t|ssion)|urgent\w*|immediately)\b", re.I)
# how much of a list caption's match its items take (tried 0, 0.5, 0.8, 1, 1.5, 3: chosen on dev, key facts at
# 800 characters 0.442 → 0.453; reported on dev2, 0.484 → 0.490)
LIST_SHARE = 1.0
_OVERHEAD = 8  # characters a rendered block adds: "- " and " [n]"

# words naming who the patient is count in a sub-heading ("Older children and adults"), not inside a line: "adults" in
# "Cetirizine 5mg once daily for adults" must not put the antihistamine ahead of adrenaline for "anaphylactic shock
# in an adult" (a dose line brings its "Child: …" lines with it: select.other_populations)
WHO_STEMS = frozenset(clinical.stems("adult adults child children man woman patient patients person people"))


def _idf(blocks: list[Block]) -> dict[str, float]:
    df: dict[str, int] = defaultdict(int)
    for b in blocks:
        for s in clinical.stems(b.text + " " + b.subhead):
            df[s] += 1
    n = len(blocks) or 1
    return {s: math.log(1 + n / d) for s, d in df.items()}


def _score(block: Block, q: set[str], idf: dict[str, float]) -> float:
    own = clinical.stems(block.text)
    head = clinical.stems(block.subhead)
    label = clinical.stems(block.text.split(":")[0]) & WHO_STEMS if ":" in block.text[:30] else set()
    return sum(idf.get(s, 0.0) for s in q & own - WHO_STEMS) + 0.5 * sum(idf.get(s, 0.0) for s in q & (head | label))


def part_blocks(section: BookSection, part: str) -> list[Block]:
    """The blocks of a part (headings excluded), with the fallbacks above; referral also gathers any block of
    the section that says refer / danger signs / admit."""
    for name in FALLBACK_PARTS.get(part, (part,)):
        blocks = [b for b in section.part(name) if b.kind != "heading" and len(b.text) > 2]
        if part == "referral":
            said = [b for b in section.blocks if b.kind != "heading" and b.part != "referral"
                    and REFERRAL_WORDS.search(b.text)]
            blocks += said + [x for b in said for x in list_of(section.blocks, b)]  # "Refer … if:" + criteria
            blocks = sorted(set(blocks), key=lambda b: b.order)
        if blocks:
            return _dedupe(blocks)
    return []


def _dedupe(blocks: list[Block]) -> list[Block]:
    """The book repeats some lines on consecutive pages (table headers, notes): keep the first under each
    sub-heading (the same dose line under "Mild to moderate" and under "Severe" is part of both)."""
    seen, out = set(), []
    for b in blocks:
        key = (b.subhead.lower(), " ".join(b.text.lower().split()))
        if key not in seen:
            seen.add(key)
            out.append(b)
    return out


# a line telling to refer at once (clinical.URGENT_REFERRAL_RE) is always shown in a quoted management part when
# it fits (a third of the budget at most, two lines): a health worker must not miss "Refer to hospital
# immediately" for a dose table


def select_part(section: BookSection, part: str, question: str, budget: int | None,
                shown: frozenset[int] = frozenset(), severe: bool = False) -> tuple[list[Block], bool]:
    """(blocks in book order, whether some did not fit) for one part, leaving out blocks already `shown` by
    another part; budget None takes the whole part. For a `severe` presentation (a danger sign of the guideline
    in the question) the sub-parts the book names for severe or life-threatening cases come first."""
    stated = test_results(question)
    blocks = [b for b in part_blocks(section, part) if b.order not in shown and not _contradicts(b.subhead, stated)]
    total = sum(len(b.text) + _OVERHEAD for b in blocks)
    if budget is None or total <= budget:
        return blocks, False
    scores = block_scores(section, question)
    if part == "management" and asks_first_steps(question):
        scores = dict.fromkeys(scores, 0.0)  # the first measures are the part read from its start
    urgent: list[Block] = []
    if part == "management":
        for b in [b for b in blocks if clinical.URGENT_REFERRAL_RE.search(b.text)][:2]:
            group = [b, *list_of(blocks, b)]  # "Refer urgently to hospital if:" comes with its criteria
            if sum(len(x.text) + _OVERHEAD for x in urgent + group) <= budget // 3:
                urgent += [x for x in group if x not in urgent]
    left = budget - sum(len(b.text) + _OVERHEAD for b in urgent)
    chosen = urgent + _fill([b for b in blocks if b not in urgent], scores, left, SEVERE_SUBPART if severe else None,
                            keep_best=part != "management", named=named_subheads(section, blocks, question))
    return without_dangling_lead_ins(blocks, sorted(chosen, key=lambda b: b.order)), len(chosen) < len(blocks)


def _contradicts(subhead: str, stated: frozenset[str]) -> bool:
    """A sub-part for the other test result than the one the question states ("Management of RDT/Blood Smear
    Negative Patients" for a child whose RDT is positive) is not for this patient."""
    own = test_results(subhead) if stated else frozenset()
    return bool(own) and not own & stated


# a sub-heading the book gives the severe cases of a condition ("Severe HC4", "Life threatening HC4", "Severe
# dehydration", "Management of severe malaria", "If severe"; not "If breathing <30/minute or severe chest in-drawing")
SEVERE_SUBPART = re.compile(r"^(if (the )?(condition is )?)?((management|treatment) of )?(severe|life[- ]threat\w*|"
                            r"first aid|acute|status|emergenc\w*|immediate\w*)\b", re.I)
LIST_MAX = 8  # items a lead-in line ending with ':' is read with at most


def _leads(block: Block) -> bool:
    """A line ending with ':' leads into what follows it ("Refer urgently to hospital if:")."""
    return block.text.rstrip().endswith(":")


def list_of(blocks: list[Block], lead: Block) -> list[Block]:
    """The short lines a line ending with ':' leads into ("Refer urgently to hospital if:" → "Confused", …):
    the blocks after it under the same sub-heading, up to a heading, another lead-in, a dose line or LIST_MAX."""
    if not _leads(lead):
        return []
    out = []
    for b in blocks:
        if b.order <= lead.order or b.subhead != lead.subhead:
            continue
        if (b.kind == "heading" or _leads(b) or clinical.has_dose(b.text)
                or len(out) >= LIST_MAX):
            break
        out.append(b)
    return out


def without_dangling_lead_ins(blocks: list[Block], chosen: list[Block]) -> list[Block]:
    """The chosen blocks less any line ending with ':' shown without the line that follows it (what it leads
    into: "a combination of mifepristone and misoprostol should be the first-line intervention:")."""
    taken = {b.order for b in chosen}
    following = {a.order: b for a, b in zip(blocks, blocks[1:], strict=False)}
    return [b for b in chosen
            if not _leads(b) or b.order not in following
            or following[b.order].order in taken]


# the word that asks for the management part picks no line inside it: "Refer for specialist management" is not the
# answer to "what is the first-line management for a mild case" ("treatment" does: "Initiate ART 4-6 weeks after
# starting CM treatment" answers "when should ART start after treatment")
ASKED_PART_STEMS = frozenset(clinical.stems("management manage managed managing"))


def block_scores(section: BookSection, question: str) -> dict[int, float]:
    """Each block's match with the question: idf-weighted shared stems (the sub-heading counts half). The items
    of a list score at least LIST_SHARE of the caption that leads into them: "Advise mother on danger signs as
    follows:" matches the question, the rows under it are the answer."""
    q = clinical.stems(question) - ASKED_PART_STEMS
    idf = _idf(section.blocks)
    scores = {b.order: _score(b, q, idf) for b in section.blocks}
    caption = None
    blocks = section.blocks
    for i, b in enumerate(blocks):
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        if b.kind != "item" and (LEAD_IN.search(b.text.strip()) or _caption(b, nxt)):
            caption = b
        elif caption is not None and b.kind == "item" and b.subhead == caption.subhead:
            scores[b.order] = max(scores[b.order], LIST_SHARE * scores[caption.order])
        elif not (b.kind == "heading" and b.text.isupper()):  # a column header row keeps the caption open
            caption = None
    return scores


def _caption(block: Block, nxt: Block | None) -> bool:
    """A line of text just before a list names it ("Risk factors (and indication for screening)"); a dose line
    ("10 ml/kg slowly (over 3 hours)", the end of "Transfuse") does not."""
    return (block.kind == "text" and nxt is not None and nxt.kind == "item" and nxt.subhead == block.subhead
            and not clinical.has_dose(block.text))


def named_subheads(section: BookSection, blocks: list[Block], question: str) -> frozenset[str]:
    """The sub-headings the question states, every word of them (the section's own title words and who the
    patient is aside): "Heavy Bleeding" for "heavy menstrual bleeding since insertion", "General measures" for
    "what treatment and general measures are needed". Chosen on dev2 against two thirds of the words (key facts
    at 800 characters 0.591 → 0.596 / 0.595); dev unchanged (docs/policy.md)."""
    q = clinical.stems(question)
    out = set()
    for head in {b.subhead for b in blocks if b.subhead}:
        own = clinical.stems(head) - WHO_STEMS - clinical.stems(section.title)
        if own and own <= q:
            out.add(head)
    return frozenset(out)


def _fill(blocks: list[Block], scores: dict[int, float], budget: int, first: re.Pattern[str] | None = None,
          keep_best: bool = True, named: frozenset[str] = frozenset()) -> list[Block]:
    """The best sub-part from its start (a list or a table is read top-down): the book's severe sub-part first
    for a severe presentation, then one whose sub-heading the question states (`named`), then the best match; then
    the best other blocks; when no other block matches the question, the part read on from its start instead (the
    book's order: the first measures before the adjuncts). A management part (`keep_best` off) is never shown with
    a gap inside a sub-part (without_gaps)."""
    groups: dict[str, list[Block]] = defaultdict(list)
    for b in blocks:
        groups[b.subhead].append(b)
    ranked = sorted(groups.values(), key=lambda g: (not (first and first.search(g[0].subhead)),
                                                    g[0].subhead not in named,
                                                    -max(scores[b.order] for b in g), g[0].order))
    chosen = _top_down(ranked[0], scores, budget, keep_best) if ranked else []
    left = budget - sum(len(b.text) + _OVERHEAD for b in chosen)
    leads = {lead_in(blocks, b) for b in blocks} - {None}  # shown only with an item they lead into
    rest = sorted((b for b in blocks if b not in chosen and b not in leads), key=lambda b: (-scores[b.order], b.order))
    matching = [b for b in rest if scores[b.order] > 0]
    for b in matching or [b for b in blocks if b not in chosen and b not in leads]:
        group = [x for x in dict.fromkeys([*needs(blocks, b), b, *other_populations(blocks, b)]) if x not in chosen]
        if not keep_best:  # a management sub-part grows as one run: the lines between are shown too
            group = _bridged(blocks, chosen, group)
        cost = sum(len(x.text) + _OVERHEAD for x in group)
        if cost <= left:
            chosen.extend(group)
            left -= cost
        elif not matching:
            break  # read in order: never skip a line to show a later one
    if not keep_best:
        chosen = without_gaps(blocks, chosen)
    return sorted(chosen, key=lambda b: b.order)


def _top_down(group: list[Block], scores: dict[int, float], budget: int, keep_best: bool) -> list[Block]:
    """A sub-part read from its start while it fits; when it does not fit whole, its best-matching line is kept
    in ("Taking … carbamazepine, … phenytoin, … rifampicin" among a contraindication list the budget cuts)."""
    best = max(group, key=lambda b: (scores[b.order], -b.order))
    sure = [x for x in dict.fromkeys([*needs(group, best), best])] if keep_best and scores[best.order] > 0 else []
    reserved = sum(len(x.text) + _OVERHEAD for x in sure)
    if sum(len(b.text) + _OVERHEAD for b in group) <= budget or reserved > budget:
        sure, reserved = [], 0
    chosen: list[Block] = []
    left = budget - reserved
    for b in group:
        if b in sure or b in chosen:
            continue
        unit = [b, *other_populations(group, b)]  # an adult dose is never shown without its "Child: …" line
        cost = sum(len(x.text) + _OVERHEAD for x in unit if x not in sure)
        if cost > left:
            break
        chosen.extend(x for x in unit if x not in sure)
        left -= cost
    return sorted(dict.fromkeys(chosen + sure), key=lambda b: b.order)


def _bridged(blocks: list[Block], chosen: list[Block], group: list[Block]) -> list[Block]:
    """A group of blocks with the lines of its sub-part between it and the lines already chosen there."""
    head = group[-1].subhead if group else ""
    run = [b.order for b in chosen if b.subhead == head] + [b.order for b in group if b.subhead == head]
    if not run:
        return group
    lo, hi = min(run), max(run)
    between = [b for b in blocks if b.subhead == head and lo < b.order < hi and b not in chosen and b not in group]
    return sorted(dict.fromkeys([*group, *between]), key=lambda b: b.order)


def without_gaps(blocks: list[Block], chosen: list[Block]) -> list[Block]:
    """A quoted management list read from wherever it starts, up to the first line it leaves out: a later line
    shown over a gap reads as the next step ("Salbutamol inhaler prn" / "Higher dose may be needed initially"
    without the inhaled steroid between them reads as "more salbutamol")."""
    taken, started, broken, out = set(chosen), set(), set(), []
    for b in blocks:
        if b in taken:
            if b.subhead not in broken:
                out.append(b)
                started.add(b.subhead)
        elif b.subhead in started:
            broken.add(b.subhead)
    return out


# a line that continues the one before it and reads wrong alone ("Child: 25 mg/kg per dose", "Then once a day")
CONTINUES = re.compile(r"^(then|followed by|follow (with|by|up)|or|and|plus|child(ren)?|adults?|infants?|neonates?)\b",
                       re.I)


def needs(blocks: list[Block], block: Block, depth: int = 3) -> list[Block]:
    """The blocks a block must be shown with: the lines it continues (up to `depth`) and its lead-in."""
    out: list[Block] = []
    cur = block
    for _ in range(depth):
        before = [b for b in blocks if b.order < cur.order and b.subhead == cur.subhead and b.kind != "heading"]
        if not before or not (CONTINUES.match(cur.text) or _doses(cur, before[-1])):
            break
        cur = before[-1]
        out.append(cur)
    lead = lead_in(blocks, cur)
    return out + ([lead] if lead is not None and lead not in out else [])


_FOR_OTHERS = re.compile(r"^(child(ren)?|adults?|infants?|neonates?|adolescents?)\b", re.I)
# a "Child: …" dose the PDF sets at the end of the next line ("Continue orally for … Child: 50 mg/kg every 6 hours")
_OTHERS_DOSE = re.compile(r"(?<!\()\b(Child(ren)?|CHILD(REN)?|Infants?|Neonates?)\s*:")


def other_populations(blocks: list[Block], block: Block, depth: int = 3) -> list[Block]:
    """The lines right after a dose line that give its regimen for other patients ("Child: 0.5-1 g/kg"): shown
    with it, so an adult dose is never shown as the dose for everyone."""
    if not clinical.has_dose(block.text):
        return []
    after = [b for b in blocks if b.order > block.order and b.subhead == block.subhead and b.kind != "heading"]
    out = []
    for b in after[:depth]:
        if not (_FOR_OTHERS.match(b.text) or _OTHERS_DOSE.search(b.text)):
            break
        out.append(b)
    return out


def _doses(block: Block, prev: Block) -> bool:
    """A line that opens with a dose ("10 ml/kg slowly (over 3 hours)") gives the dose of a short instruction just
    before it with none ("Transfuse"): shown alone it reads as another drug's dose."""
    return (clinical.DOSE_RE.match(block.text.strip()) is not None and len(prev.text) <= 30
            and not clinical.has_dose(prev.text))


LEAD_IN = re.compile(r"^(if|when|where|for|unless|after|before|in|once|while)\b|:$", re.I)


def lead_in(blocks: list[Block], block: Block) -> Block | None:
    """The condition a list item depends on ("If not breathing after 20 minutes:"), shown with the item: the
    nearest non-item block before it under the same sub-heading, when it reads as a condition or a caption. An
    item that leads into a list of its own, or follows one, depends on no earlier caption ("Blood should not be
    transfused unless it has been:" is not under "Do not use blood transfusion to:")."""
    if block.kind != "item" or _leads(block):
        return None
    before = [b for b in blocks if b.order < block.order and b.subhead == block.subhead]
    for b in reversed(before):
        if b.kind == "item" and _leads(b):
            return None
        if b.kind != "item":
            return b if LEAD_IN.search(b.text.strip()) else None
    return None


def extra_blocks(section: BookSection, question: str, taken: set[int], budget: int) -> list[Block]:
    """Blocks outside the asked parts that match the question best, to use what is left of the budget."""
    scores = block_scores(section, question)
    stated = test_results(question)
    pool = [b for b in section_blocks(section) if b.order not in taken and scores[b.order] > 0
            and not _contradicts(b.subhead, stated)]
    pool.sort(key=lambda b: (-scores[b.order], b.order))
    everything = section_blocks(section)
    out: list[Block] = []
    left = budget
    for b in pool:
        lead = lead_of_list(everything, b)
        # a criterion with the line that leads into it, and the other way; "Plus gentamicin …" with the line
        # it continues and the condition it depends on (select.needs)
        group = [x for x in dict.fromkeys(([lead] if lead else []) + needs(everything, b) + [b]
                                          + other_populations(everything, b) + _led_into(everything, b))
                 if x not in out and x.order not in taken]
        cost = sum(len(x.text) + _OVERHEAD for x in group)
        if group and cost <= left:
            out.extend(group)
            left -= cost
    return sorted(out, key=lambda b: b.order)


def _led_into(blocks: list[Block], block: Block) -> list[Block]:
    """The first line a lead-in ending with ':' leads into: its list's first item, else the line after it (a
    lead-in is never shown alone; "Do not use blood transfusion to:" → "Expand blood volume, unless … >30% …")."""
    if not _leads(block):
        return []
    items = list_of(blocks, block)[:1]
    return items or [b for b in blocks if b.order > block.order][:1]


def lead_of_list(blocks: list[Block], block: Block) -> Block | None:
    """The line ending with ':' whose list holds `block` ("Refer urgently to hospital if:" for "Confused")."""
    before = [b for b in blocks if b.order < block.order and b.subhead == block.subhead]
    for b in reversed(before[-LIST_MAX:]):
        if _leads(b):
            return b if block in list_of(blocks, b) else None
    return None


def section_blocks(section: BookSection) -> list[Block]:
    """All the blocks a section shows (headings left out, repeated lines once), in book order."""
    return _dedupe([b for b in section.blocks if b.kind != "heading" and len(b.text) > 2])
