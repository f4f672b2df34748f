"""Output formats: prose, the XML triage packet and the positional JSON array (docs/formats.md).

One schema (``base.TRIAGE_*``) drives everything here: the grammar text (xgrammar EBNF == llama.cpp GBNF),
the regex and JSON schema sent to OpenAI-compatible servers, the strict parsers, the renderers used by the
extractive backend, the repair of truncated packets, and `[n]` citation resolution.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from ragcds.generate.base import CONFIDENCE_LEVELS, TRIAGE_FIELDS, TRIAGE_LEVELS, Citation
from ragcds.retrieve import Hit

TEXT_MAX = 120  # characters per text field
LIST_MAX = 4  # items per list field
LIST_FIELDS = ("actions", "next_steps", "red_flags")
FIELD_NAMES = tuple(name for _, name in TRIAGE_FIELDS)

# TEXT allows `[n]` citation markers; forbids '<', '|', newlines and other control characters.
# The first character is not a space, so a packet cannot be padded with blanks.
_XML_CHAR = r"[^<|\x00-\x1f]"
_XML_FIRST = r"[^<| \x00-\x1f]"
# Inside JSON strings also forbid '"' and '\\' (no escapes needed, json.loads always accepts the result).
_JSON_CHAR = r'[^"\\<|\x00-\x1f]'
_JSON_FIRST = r'[^"\\<| \x00-\x1f]'


def _alts(values: Sequence[str]) -> str:
    return " | ".join(f'"{v}"' for v in values)


def grammar(format: str) -> str:
    """EBNF for xgrammar; the same text is valid llama.cpp GBNF."""
    if format == "xml":
        parts = []
        for tag, name in TRIAGE_FIELDS:
            body = {"level": "level", "confidence": "conf", "condition": "text"}.get(name, "list")
            parts.append(f'"<{tag}>" {body} "</{tag}>"')
        return (
            "\n".join(
                [
                    'root ::= "<r>" ' + " ".join(parts) + ' "</r>"',
                    f"level ::= {_alts(TRIAGE_LEVELS)}",
                    f"conf ::= {_alts(CONFIDENCE_LEVELS)}",
                    f'list ::= text ("|" text){{0,{LIST_MAX - 1}}}',
                    f"text ::= {_XML_FIRST} {_XML_CHAR}{{0,{TEXT_MAX - 1}}}",
                ]
            )
            + "\n"
        )
    if format == "array":
        return (
            "\n".join(
                [
                    'root ::= "[" level "," str "," conf "," list "," list "," list "]"',
                    "level ::= " + " | ".join(f'"\\"{v}\\""' for v in TRIAGE_LEVELS),
                    "conf ::= " + " | ".join(f'"\\"{v}\\""' for v in CONFIDENCE_LEVELS),
                    f'list ::= "[" str ("," str){{0,{LIST_MAX - 1}}} "]"',
                    'str ::= "\\"" ' + f"{_JSON_FIRST} {_JSON_CHAR}{{0,{TEXT_MAX - 1}}}" + ' "\\""',
                ]
            )
            + "\n"
        )
    raise ValueError(f"no grammar for format {format!r} (only xml and array are constrained)")


def xml_regex() -> str:
    """The XML packet as a regex (for vLLM's guided_regex); equivalent to grammar('xml')."""
    text = f"{_XML_FIRST}{_XML_CHAR}{{0,{TEXT_MAX - 1}}}"
    lst = f"{text}(\\|{text}){{0,{LIST_MAX - 1}}}"
    body = {
        "level": "(" + "|".join(TRIAGE_LEVELS) + ")",
        "confidence": "(" + "|".join(CONFIDENCE_LEVELS) + ")",
        "condition": text,
    }
    return "<r>" + "".join(f"<{t}>{body.get(n, lst)}</{t}>" for t, n in TRIAGE_FIELDS) + "</r>"


def json_schema() -> dict:
    """The positional array as JSON schema (OpenAI `response_format` json_schema)."""
    text = {"type": "string", "minLength": 1, "maxLength": TEXT_MAX, "pattern": r'^[^<|\n"]+$'}
    lst = {"type": "array", "items": text, "minItems": 1, "maxItems": LIST_MAX}
    return {
        "type": "array",
        "prefixItems": [
            {"type": "string", "enum": list(TRIAGE_LEVELS)},
            text,
            {"type": "string", "enum": list(CONFIDENCE_LEVELS)},
            lst,
            lst,
            lst,
        ],
        "items": False,
        "minItems": 6,
        "maxItems": 6,
    }


# ---------------------------------------------------------------- parsing

_XML_RE = re.compile(xml_regex())
CITATION_RE = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")  # [1], [1, 2], [1-3]


def _valid_text(s: object) -> bool:
    return (
        isinstance(s, str) and 0 < len(s) <= TEXT_MAX and s[0] != " " and not re.search(r"[<|\x00-\x1f]", s)
    )


_TAG_ALT = "|".join(tag for tag, _ in TRIAGE_FIELDS)
_SPACE_AFTER_OPEN = re.compile(rf"<({_TAG_ALT})>[ \t\r\n]+")
_SPACE_BEFORE_CLOSE = re.compile(rf"[ \t\r\n]+</({_TAG_ALT})>")
_SPACE_BETWEEN_TAGS = re.compile(r">[ \t\r\n]+<")
_SPACE_AROUND_PIPE = re.compile(r"[ \t]*\|[ \t]*")
_CLOSED_VALUES = re.compile(r"<(t|cf)>([A-Za-z]+)</\1>")


def tidy_xml(text: str) -> str:
    """The packet with insignificant whitespace removed: around the packet, between tags, just inside a tag
    and around `|`; level and confidence lower-cased. Nothing else changes (never a digit)."""
    t = _SPACE_BETWEEN_TAGS.sub("><", text.strip())
    t = _SPACE_BEFORE_CLOSE.sub(r"</\1>", _SPACE_AFTER_OPEN.sub(r"<\1>", t))
    t = _SPACE_AROUND_PIPE.sub("|", t)
    return _CLOSED_VALUES.sub(lambda m: f"<{m.group(1)}>{m.group(2).lower()}</{m.group(1)}>", t)


def parse_xml(text: str) -> dict | None:
    """Fields of an XML packet: the grammar's exact form, or it once `tidy_xml` removed whitespace a model
    may put around tags and separators (e.g. `a | b`) and lower-cased level/confidence."""
    m = _XML_RE.fullmatch(text.strip()) or _XML_RE.fullmatch(tidy_xml(text))
    if not m:
        return None
    fields: dict[str, object] = {}
    for tag, name in TRIAGE_FIELDS:
        value = re.search(f"<{tag}>(.*?)</{tag}>", m.group(0)).group(1)  # type: ignore[union-attr]
        fields[name] = value.split("|") if name in LIST_FIELDS else value
    return fields


def _tidy_json(value: object) -> object:
    """Strings stripped of surrounding whitespace, recursively (json.loads already allows it between items)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [_tidy_json(v) for v in value]
    return value


def parse_array(text: str) -> dict | None:
    """Fields of a positional JSON array; whitespace around strings and level/confidence case are forgiven."""
    try:
        data = _tidy_json(json.loads(text.strip()))
    except ValueError:
        return None
    if not (isinstance(data, list) and len(data) == 6):
        return None
    level, condition, conf, *lists = data
    level, conf = (v.lower() if isinstance(v, str) else v for v in (level, conf))
    if level not in TRIAGE_LEVELS or conf not in CONFIDENCE_LEVELS or not _valid_text(condition):
        return None
    for lst in lists:
        if not (isinstance(lst, list) and 1 <= len(lst) <= LIST_MAX and all(_valid_text(x) for x in lst)):
            return None
    return dict(zip(FIELD_NAMES, [level, condition, conf, *lists], strict=True))


def extract_citations(text: str) -> list[int]:
    """Passage numbers cited as `[n]`, `[1, 2]` or `[1-3]`, in first-seen order."""
    seen: list[int] = []
    for m in CITATION_RE.finditer(text):
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            ends = [int(x) for x in re.split(r"\s*[–-]\s*", part) if x]
            nums = range(ends[0], ends[-1] + 1) if len(ends) == 2 and 0 < ends[1] - ends[0] < 10 else ends
            seen.extend(n for n in nums if n not in seen)
    return seen


def resolve_citations(numbers: Sequence[int], passages: Sequence[Hit]) -> list[Citation]:
    """Passage n (1-based) resolves to its chunk; a number with no passage is flagged invalid."""
    out = []
    for n in numbers:
        if 1 <= n <= len(passages):
            c = passages[n - 1].chunk
            out.append(
                Citation(
                    n=n,
                    valid=True,
                    chunk_id=c.chunk_id,
                    section=c.section,
                    title=c.title,
                    printed_pages=tuple(c.printed_pages),
                    pdf_pages=tuple(c.pdf_pages),
                )
            )
        else:
            out.append(Citation(n=n, valid=False))
    return out


def parse_output(text: str, format: str, passages: Sequence[Hit]) -> tuple[dict | None, bool, list[Citation]]:
    """(fields or None, parse_ok, citations). Prose always parses; xml/array must match the schema exactly."""
    citations = resolve_citations(extract_citations(text), passages)
    if format == "prose":
        return None, bool(text.strip()), citations
    fields = parse_xml(text) if format == "xml" else parse_array(text) if format == "array" else None
    if format not in ("xml", "array"):
        raise ValueError(f"unknown format {format!r}")
    return fields, fields is not None, citations


# ---------------------------------------------------------------- rendering


def text_value(s: str, limit: int = TEXT_MAX, json_safe: bool = False) -> str:
    """Make any string a legal TEXT value: no '<', '|', control chars (and no '"', '\\' for JSON);
    cut at a word boundary without leaving a dangling number."""
    s = re.sub(r"[\x00-\x1f]+", " ", s).replace("<", "‹").replace("|", "/")
    if json_safe:
        s = s.replace('"', "'").replace("\\", "/")
    s = re.sub(r"\s+", " ", s).strip() or "-"
    if len(s) > limit:
        cut = s[: limit - 1].rsplit(" ", 1)[0]
        while re.search(r"(\s|^)[\d.,/–-]+$", cut) and " " in cut:  # never end on a bare number
            cut = cut.rsplit(" ", 1)[0]
        s = cut.rstrip(" ,;:") + "…"
    return s


def render(fields: dict, format: str) -> str:
    """Fields → packet text that parses (values are cleaned to the TEXT class)."""
    js = format == "array"

    def one(v: object) -> str:
        return text_value(str(v), json_safe=js)

    def many(v: object) -> list[str]:
        items = [one(x) for x in (v if isinstance(v, list) else [v]) if str(x).strip()][:LIST_MAX]
        return items or ["-"]

    level = fields.get("level") if fields.get("level") in TRIAGE_LEVELS else "routine"
    conf = fields.get("confidence") if fields.get("confidence") in CONFIDENCE_LEVELS else "low"
    vals = {
        "level": level,
        "condition": one(fields.get("condition", "-")),
        "confidence": conf,
        **{k: many(fields.get(k, [])) for k in LIST_FIELDS},
    }
    if format == "array":
        return json.dumps([vals[n] for n in FIELD_NAMES], ensure_ascii=False, separators=(",", ":"))
    if format == "xml":
        body = "".join(
            f"<{t}>{'|'.join(vals[n]) if n in LIST_FIELDS else vals[n]}</{t}>" for t, n in TRIAGE_FIELDS
        )
        return f"<r>{body}</r>"
    raise ValueError(f"cannot render format {format!r}")


def repair(text: str, format: str) -> str | None:
    """Best-effort packet from a malformed or truncated reply (a server that ignored guided decoding, or a
    constrained generation cut by max_new_tokens). Returns parseable text, or None when nothing usable."""
    t = text.strip()
    fields: dict[str, object] = {}
    if format == "xml":
        t = t[t.find("<r>") :] if "<r>" in t else t
        for tag, name in TRIAGE_FIELDS:
            m = re.search(f"<{tag}>([^<]*)(?:</{tag}>|$)", t)
            if m and m.group(1).strip():
                v = m.group(1).strip()
                fields[name] = [x for x in v.split("|") if x.strip()] if name in LIST_FIELDS else v
    elif format == "array":
        start = t.find("[")
        if start < 0:
            return None
        items = re.findall(r'"((?:[^"\\]|\\.)*)"?', t[start:])
        names = list(FIELD_NAMES)
        # positional: level, condition, confidence, then the remaining strings spread over the lists
        groups = re.findall(r"\[([^\[\]]*)\]?", t[start + 1 :])
        for name, value in zip(names[:3], items[:3], strict=False):
            fields[name] = value
        for name, grp in zip(LIST_FIELDS, groups[: len(LIST_FIELDS)], strict=False):
            vals = [x for x in re.findall(r'"((?:[^"\\]|\\.)*)"?', grp) if x.strip()]
            if vals:
                fields[name] = vals
    else:
        return None
    level = str(fields.get("level", "")).strip().lower()
    matches = [v for v in TRIAGE_LEVELS if level and v.startswith(level)]
    if not matches:
        return None  # never invent a triage level
    fields["level"] = matches[0]
    conf = str(fields.get("confidence", "")).strip().lower()
    fields["confidence"] = next((v for v in CONFIDENCE_LEVELS if conf and v.startswith(conf)), "low")
    return render(fields, format)
