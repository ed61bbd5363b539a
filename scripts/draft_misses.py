"""Sort a golden split's must_include facts that are not in a draft's first 200 characters.

Usage: SUGGESTER_CACHE_DIR=.cache/tests .venv/bin/python scripts/draft_misses.py [dev] [-v]

Buckets (first that applies): the draft is a holding reply; the fact is in the draft after its
first 200 characters (split by channel: board/phone openings are longer); it is in the
draft's optional sentences (cut by the budget); it is in the first retrieved article; in
another retrieved article; in no retrieved article. Tune on dev only.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any, cast

from suggester.evaluation.checks import ANSWER_FIRST_CHARS
from suggester.evaluation.golden import load_golden
from suggester.evaluation.runner import KnownVectors, load_service, make_suggester
from suggester.search.models import shared_embedder
from suggester.search.retrieve import Retriever
from suggester.settings import load_settings


def main() -> None:
    split = next((a for a in sys.argv[1:] if not a.startswith("-")), "dev")
    verbose = "-v" in sys.argv
    settings = load_settings()
    embedder = KnownVectors(shared_embedder(settings))
    retriever = Retriever(settings, embedder=cast(Any, embedder))
    service, _ = load_service()
    suggester = make_suggester(service, settings, retriever)
    articles: dict[str, str] = {}
    for chunks in suggester._components()[0]._by_article.values():  # noqa: SLF001
        for chunk in chunks:
            if not chunk.internal:
                articles[chunk.article_id] = articles.get(chunk.article_id, "") + chunk.text
    buckets: Counter[str] = Counter()
    total = 0
    for item in load_golden(split):
        if not (item.must_include and item.grounded):
            continue
        suggestion = suggester.suggest(item.inquiry, channel=item.channel, log=False)
        draft = suggestion.draft
        text = draft.text or ""
        total += len(item.must_include)
        retrieved = list(dict.fromkeys(p.article_id for p in suggestion.retrieval.passages))
        optional = " ".join(o.text for o in draft.optional)
        for fact in item.must_include:
            if fact in text[:ANSWER_FIRST_CHARS]:
                continue
            if not draft.grounded:
                bucket = "holding reply"
            elif fact in text:
                bucket = f"after 200 ({item.channel})"
            elif fact in optional:
                bucket = "optional (budget)"
            elif retrieved and fact in articles.get(retrieved[0], ""):
                bucket = "first article, not chosen"
            elif any(fact in articles.get(a, "") for a in retrieved[1:]):
                bucket = "another retrieved article"
            else:
                bucket = "no retrieved article"
            buckets[bucket] += 1
            if verbose:
                print(f"{item.id} [{bucket}] {fact!r} | {item.inquiry}\n  {text}\n"
                      f"  retrieved: {retrieved[:4]}\n")
    print(f"{split}: {sum(buckets.values())} of {total} facts not in the first "
          f"{ANSWER_FIRST_CHARS} characters")
    for bucket, count in buckets.most_common():
        print(f"  {count:3d}  {bucket}")


if __name__ == "__main__":
    main()
