"""Optional LLM drafting through any OpenAI-compatible endpoint, checked before it is shown.

With `SUGGESTER_LLM_BASE_URL` and `SUGGESTER_LLM_MODEL` set, the composer's grounded draft is
handed to a language model (LlamaIndex's `OpenAILike`) with the analysis, the customer-facing
passages numbered [1]..[n] and the channel's tone rules, and the model rewrites it citing the
passages as [n]. `draft_check.check_draft` then decides: a draft that passes goes out with
`source = "llm"`; otherwise the composer's draft goes out with the reason in `draft.llm`.
A timeout or any error of the call is a reason too, never a failed suggestion.

The customer's message is not in the prompt (nor are the analyzer's evidence spans, which
quote it): as in the composer, the customer's words cannot steer a policy statement.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from suggester.knowledge.chunks import Chunk
from suggester.reply.analyze import Analysis
from suggester.reply.draft import PLACEHOLDER, Citation, Draft, LLMAttempt, Sentence
from suggester.reply.draft_check import DraftCheck, ForbiddenText, check_draft
from suggester.search.retrieve import RetrievalResult
from suggester.settings import Settings

# The prompt stays near 2,000 tokens: small local models read it in seconds, not minutes.
MAX_PASSAGES = 4
MAX_PASSAGE_CHARS = 450
MAX_TOKENS = 512
TEMPERATURE = 0.2

CHANNEL_NAMES = {"chat": "채팅", "board": "게시판 답변", "phone": "전화 응대 대본"}
TONE_RULES = {
    "chat": "해요체로 친근하고 짧게 씁니다. 두세 문장마다 문단을 나눕니다.",
    "board": "합니다체로 정중하게 씁니다. 인사말로 시작하고 맺음말로 끝냅니다.",
    "phone": "상담원이 소리 내어 읽을 대본입니다. 합니다체로, 짧은 문장으로 씁니다. "
             "기호와 목록을 쓰지 않습니다.",
}
RULES = (
    "당신은 중고 패션 마켓 리클로짓 고객센터의 답변 초안을 다듬는 도우미입니다.\n"
    "규칙:\n"
    "1. 반드시 한국어로만 답합니다.\n"
    "2. [자료]에 있는 내용만 말합니다. 정책이나 사실을 말하는 문장 끝에는 근거 자료 번호를 "
    "[1]처럼 붙입니다. 없는 번호는 쓰지 않습니다.\n"
    "3. 숫자, 기간, 금액, 수수료, 비율은 그 문장이 인용한 자료에 적힌 그대로만 씁니다.\n"
    "4. 자료에 없는 약속(환불 보장, 보상, 예외 처리)을 하지 않습니다.\n"
    "5. 설명 없이 고객에게 보낼 답변 본문만 씁니다."
)
_AUDIENCE = {"buyer": "구매자", "seller": "판매자", "unknown": "알 수 없음"}
_URGENCY = {"normal": "보통", "high": "높음", "critical": "매우 높음"}


def prompt_passages(draft: Draft, retrieval: RetrievalResult,
                    chunks: Mapping[str, Chunk]) -> list[Chunk]:
    """The passages the model may cite: the composer's cited ones first, in its numbering (so
    the composer's [n] is passage n), then the other retrieved ones; never an internal one."""
    cited = [chunks[c.chunk_id] for c in draft.citations if c.chunk_id in chunks]
    found = cited + [p.chunk for p in retrieval.passages]
    unique = list({c.id: c for c in found if not c.internal}.values())
    return unique[:max(MAX_PASSAGES, len(cited))]


def build_messages(analysis: Analysis, passages: Sequence[Chunk], draft: Draft) -> list[Any]:
    """One user message: the rules, then analysis, tone, numbered passages and the draft.

    The rules are not a system message: some chat templates drop or refuse one (Gemma's
    format in llama-cpp-python silently drops it), and every server keeps a user message."""
    from llama_index.core.llms import ChatMessage, MessageRole

    rules, analysis_block, tone, request = instructions(analysis, len(passages), draft.channel)
    numbered = "\n\n".join(f"[{n}] {c.title} > {c.section}\n{c.text[:MAX_PASSAGE_CHARS]}"
                           for n, c in enumerate(passages, start=1))
    user = (f"{rules}\n\n{analysis_block}\n\n{tone}\n\n[자료]\n{numbered}\n\n"
            f"[기본 초안]\n{draft.cited_text}\n\n{request}")
    return [ChatMessage(role=MessageRole.USER, content=user)]


def instructions(analysis: Analysis, passages: int, channel: str) -> list[str]:
    """The prompt's own words (rules, analysis, tone, request): never part of a reply."""
    flags = ", ".join(analysis.flags) or "없음"
    # Names only: a confidence such as 0.94 is a number the model might repeat as a fact.
    types = ", ".join(t.category for t in analysis.inquiry_types)
    return [
        RULES,
        f"[문의 분석]\n유형: {types or '미분류'} / 고객: "
        f"{_AUDIENCE.get(analysis.audience, analysis.audience)} / 긴급도: "
        f"{_URGENCY.get(analysis.urgency, analysis.urgency)} / 감정: {analysis.sentiment} / "
        f"위험 신호: {flags}",
        f"[채널과 말투]\n{CHANNEL_NAMES.get(channel, channel)}: "
        f"{TONE_RULES.get(channel, TONE_RULES['chat'])}",
        "위 기본 초안을 자료에 맞게 자연스럽게 다듬은 최종 답변을 쓰세요. "
        f"근거 자료 번호는 [1]부터 [{passages}]까지만 쓸 수 있습니다.",
    ]


class LLMTimeout(Exception):
    """The model did not finish within the configured timeout."""


class LLMDrafter:
    """Ask the configured endpoint to rewrite a composer draft; check what comes back."""

    def __init__(self, settings: Settings, *, http_client: Any = None) -> None:
        """`http_client` (an `httpx.Client`) is for proxies and for watching the requests."""
        from llama_index.llms.openai_like import OpenAILike

        self.model = settings.llm_model
        self.timeout = settings.llm_timeout
        self._llm = OpenAILike(
            model=settings.llm_model, api_base=settings.llm_base_url.rstrip("/"),
            api_key=settings.llm_api_key or "unused", timeout=settings.llm_timeout,
            max_retries=0,  # a retry would double the wait an agent already paid
            is_chat_model=True, max_tokens=MAX_TOKENS, temperature=TEMPERATURE,
            http_client=http_client)

    def rewrite(self, draft: Draft, *, retrieval: RetrievalResult, analysis: Analysis,
                chunks: Mapping[str, Chunk], internal: ForbiddenText | None = None,
                known: Sequence[str] = (),
                on_token: Callable[[str], None] | None = None) -> Draft:
        """The model's draft when it passes the checks, else `draft` with the reason."""
        if not draft.grounded or not draft.citations:
            return replace(draft, llm=LLMAttempt(status="skipped", reason="not_grounded",
                                                 detail=draft.reason, model=self.model))
        passages = prompt_passages(draft, retrieval, chunks)
        messages = build_messages(analysis, passages, draft)
        started = time.perf_counter()
        try:
            text = self.complete(messages, on_token=on_token)
        except Exception as exc:  # noqa: BLE001 - any failure of the call falls back
            reason = "timeout" if _is_timeout(exc) else "error"
            return replace(draft, llm=LLMAttempt(
                status="rejected", reason=reason, detail=_describe(exc),
                latency_ms=_since(started), model=self.model))
        latency = _since(started)
        # A small model may echo the prompt: its own words are refused like a memo's.
        prompt = ForbiddenText(instructions(analysis, len(passages), draft.channel),
                              [c.text for c in passages] + [draft.text])
        check = check_draft(text, [c.text for c in passages], internal=internal, known=known,
                            prompt=prompt)
        if not check.ok:
            return replace(draft, llm=LLMAttempt(status="rejected", reason=check.reason,
                                                 detail=check.detail[:500], latency_ms=latency,
                                                 model=self.model))
        attempt = LLMAttempt(status="accepted", latency_ms=latency, model=self.model)
        return checked_draft(check, passages, draft.channel, attempt)

    def complete(self, messages: list[Any],
                 on_token: Callable[[str], None] | None = None) -> str:
        """The model's answer; streamed to `on_token` when given, within the timeout."""
        if on_token is None:
            response = self._llm.chat(messages)
            return (response.message.content or "").strip()
        deadline = time.monotonic() + self.timeout
        parts = []
        for chunk in self._llm.stream_chat(messages):
            if chunk.delta:
                parts.append(chunk.delta)
                on_token(chunk.delta)
            if time.monotonic() > deadline:
                raise LLMTimeout(f"no complete answer within {self.timeout:g} s")
        return "".join(parts).strip()


def checked_draft(check: DraftCheck, passages: Sequence[Chunk], channel: str,
                  attempt: LLMAttempt) -> Draft:
    """A `Draft` of the model's sentences; citations renumbered in order of first use."""
    order = list(dict.fromkeys(n for s in check.sentences for n in s.citations))
    number = {old: new for new, old in enumerate(order, start=1)}
    citations = [Citation(number=number[old], chunk_id=passages[old - 1].id,
                          article_id=passages[old - 1].article_id,
                          title=passages[old - 1].title, section=passages[old - 1].section,
                          version=passages[old - 1].version) for old in order]
    paragraphs: list[list[Sentence]] = []
    last = None
    for s in check.sentences:
        if s.paragraph != last:
            paragraphs.append([])
            last = s.paragraph
        paragraphs[-1].append(Sentence(text=s.text, item=s.item,
                                       citations=tuple(dict.fromkeys(number[n]
                                                                     for n in s.citations))))
    text = " ".join(s.text for s in check.sentences)
    unfilled = list(dict.fromkeys(m.group(0) for m in PLACEHOLDER.finditer(text)))
    return Draft(channel=channel, grounded=True, reason="",
                 sentences=[s for p in paragraphs for s in p], citations=citations,
                 paragraphs=paragraphs, unfilled=unfilled, source="llm", llm=attempt)


def _is_timeout(exc: BaseException) -> bool:
    import httpx
    import openai

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, LLMTimeout | openai.APITimeoutError | httpx.TimeoutException |
                      TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: BaseException) -> str:
    message = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {message}"[:300]


def _since(mark: float) -> float:
    return (time.perf_counter() - mark) * 1000
