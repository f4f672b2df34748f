"""Optional LLM judge (OpenAI-compatible endpoint) scoring content quality 1-5, like the seed project's
Gemini-as-judge evaluation. Never required; the API key comes from RAGCDS_JUDGE_API_KEY
(or OPENAI_API_KEY)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import httpx

from ragcds.errors import BackendUnavailable
from ragcds.evaluate.dataset import Question

RUBRIC = """You grade an answer to a clinical question against the Uganda Clinical Guidelines 2023 excerpts.
Score content quality from 1 to 5:
5 = correct, complete for the question, every dose/number matches the excerpts, safe triage;
4 = correct and safe, minor omissions;
3 = partly correct, notable omissions, nothing dangerous;
2 = important errors or omissions (a wrong drug, dose or triage level);
1 = wrong, unsafe or off-topic.
Reply with the score only, as `Score: N`."""


class Judge:
    """Scores answers through POST {url}/chat/completions."""

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url = url.rstrip("/")
        self.model = model
        key = api_key or os.environ.get("RAGCDS_JUDGE_API_KEY") or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers, transport=transport)

    def _post(self, messages: list[dict]) -> str:
        endpoint = f"{self.url}/chat/completions"
        try:
            r = self.client.post(endpoint, json={"model": self.model, "messages": messages, "temperature": 0})
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"judge endpoint {endpoint} is unreachable ({type(exc).__name__}); "
                "check --judge URL or run without --judge"
            ) from exc
        if r.status_code != 200:
            raise BackendUnavailable(
                f"judge endpoint {endpoint} answered HTTP {r.status_code}; check --judge, "
                "--judge-model and RAGCDS_JUDGE_API_KEY"
            )
        try:
            return r.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError) as exc:
            raise BackendUnavailable(
                f"judge endpoint {endpoint} did not return an OpenAI chat completion"
            ) from exc

    def check(self) -> None:
        """Fail early (one line) when the endpoint does not answer."""
        self._post([{"role": "user", "content": "Reply with: Score: 5"}])

    def score(self, q: Question, answer: str, passages: Sequence[dict]) -> float | None:
        excerpts = "\n\n".join(f"[{i}] {p['text']}" for i, p in enumerate(passages, 1))
        facts = "; ".join(alts[0] for alts in q.key_facts)
        user = (
            f"Question: {q.question}\n\nGuideline excerpts:\n{excerpts}\n\nExpected key facts: {facts or '-'}"
            f"\n\nAnswer to grade:\n{answer}"
        )
        reply = self._post([{"role": "system", "content": RUBRIC}, {"role": "user", "content": user}])
        m = re.search(r"score\s*[:=]?\s*([1-5])", reply, re.I) or re.search(r"\b([1-5])\b", reply)
        return float(m.group(1)) if m else None
