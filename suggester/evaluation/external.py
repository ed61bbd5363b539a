"""External benchmarks: index a public Korean dataset as a KB, measure the four systems on it.

Our golden set was written by us, for our KB; these datasets were not. Each context or
document becomes one article with valid front matter (so `suggester lint` and the indexer
accept it) in a temporary KB, indexed by our `Indexer` into a temporary data dir; vectors
are cached by content hash in `cache_dir`, so only the first run pays for embedding.

The article format needs `## 요약`, `## 응대 예시` and two `### Q.` answers. A converted
article's 요약 is the first sentence of its text and 안내 the whole text; the script and the
two answers are the same short stubs in every article (they differ only by title, which the
retrievers see with every section), so only the text itself tells two articles apart.
"""

from __future__ import annotations

import csv
import json
import random
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from suggester.errors import InputError
from suggester.evaluation.checks import sentences
from suggester.evaluation.runner import (
    EvalReport,
    Query,
    progress_bar,
    query_vectors,
    run_meta,
    search_all,
    select_systems,
    summarise_retrieval,
)
from suggester.search.index import Indexer
from suggester.search.retrieve import SYSTEMS, Retriever
from suggester.settings import Settings, load_settings

BENCHMARKS = ("korquad", "welfare")
BENCHMARKS_DIR = Path("../shared/benchmarks")
CACHE_DIR = Path(".cache/bench")
DEFAULT_QUESTIONS = 500
CONTEXTS_PER_QUESTION = 0.6  # 500 questions → 300 contexts; about 80 ms to embed a chunk
CATEGORY = "이용방법"  # any taxonomy category: the benchmarks have their own labels
_SCRIPT = "문의하신 내용을 안내해 드릴게요."
_QUESTIONS = (("더 자세한 내용은 어디서 보나요?", "위 안내를 참고해 주세요."),
              ("다른 문의는 어디에 하나요?", "고객센터로 문의해 주세요."))


@dataclass(frozen=True, kw_only=True)
class ExternalArticle:
    id: str
    title: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    name: str
    articles: list[ExternalArticle]
    queries: list[Query]


def _sizes(questions: int | None) -> tuple[int | None, int | None]:
    """(contexts, questions) to sample; 0 or None questions means the whole dataset."""
    if not questions:
        return None, None
    return max(1, round(questions * CONTEXTS_PER_QUESTION)), questions


def _sample(values: Sequence, size: int | None, rng: random.Random) -> list:
    if size is None or size >= len(values):
        return list(values)
    chosen = sorted(rng.sample(range(len(values)), size))
    return [values[i] for i in chosen]


def load_korquad(path: Path, questions: int | None = DEFAULT_QUESTIONS,
                 seed: int = 0) -> Benchmark:
    """KorQuAD 1.0 (SQuAD JSON): one article per paragraph; a question's own paragraph is
    the relevant article."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read KorQuAD from {path}: {exc}") from exc
    contexts = [(f"korquad-{d:03d}-{p:02d}", doc["title"].replace("_", " "), para)
                for d, doc in enumerate(data) for p, para in enumerate(doc["paragraphs"])]
    rng = random.Random(seed)
    n_contexts, n_questions = _sizes(questions)
    chosen = _sample(contexts, n_contexts, rng)
    articles = [ExternalArticle(id=i, title=t, text=para["context"]) for i, t, para in chosen]
    pool = [Query(id=qa["id"], text=qa["question"], relevant=[i], category="korquad")
            for i, _, para in chosen for qa in para["qas"]]
    return Benchmark(name="korquad", articles=articles,
                     queries=_sample(pool, n_questions, rng))


def load_welfare(folder: Path, questions: int | None = DEFAULT_QUESTIONS,
                 seed: int = 0) -> Benchmark:
    """welfare-qa-ko: one article per programme document; qrels name the relevant ones."""
    try:
        index = _tsv(folder / "derived" / "articles_index.tsv")
        qrels = _tsv(folder / "derived" / "qrels.tsv")
        with (folder / "raw" / "QA_total.csv").open(encoding="utf-8", newline="") as rows:
            qa = list(csv.DictReader(rows))
    except (OSError, KeyError) as exc:
        raise InputError(f"cannot read welfare-qa-ko from {folder}: {exc}") from exc
    ids = {row["doc_path"]: f"welfare-{n:03d}" for n, row in enumerate(index)}
    rng = random.Random(seed)
    n_contexts, n_questions = _sizes(questions)
    chosen = _sample(index, n_contexts, rng)
    articles = []
    for row in chosen:
        lines = (folder / "raw" / "articles" / row["doc_path"]).read_text(
            encoding="utf-8").splitlines()
        body = "\n".join(lines[1:]).strip() or "\n".join(lines)  # line 1 is the title
        articles.append(ExternalArticle(id=ids[row["doc_path"]], title=row["title"], text=body))
    kept = {a.id for a in articles}
    pool = []
    for rel in qrels:
        relevant = [ids[p] for p in rel["relevant_doc_paths"].split("|") if ids.get(p) in kept]
        if relevant:
            row = int(rel["qa_row"])
            # A document filed under two categories has "A|B": count it under the first.
            category = re.sub(r"^\d+_", "", rel["category"].split("|")[0]).replace("_", " ")
            pool.append(Query(id=f"welfare-q{row:04d}", text=qa[row]["Question"],
                              relevant=relevant, category=category))
    return Benchmark(name="welfare", articles=articles, queries=_sample(pool, n_questions, rng))


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as rows:
        return list(csv.DictReader(rows, delimiter="\t"))


def load_benchmark(name: str, benchmarks_dir: Path = BENCHMARKS_DIR,
                   questions: int | None = DEFAULT_QUESTIONS, seed: int = 0) -> Benchmark:
    if name == "korquad":
        return load_korquad(benchmarks_dir / "korquad-v1-dev" / "KorQuAD_v1.0_dev.json",
                            questions, seed)
    if name == "welfare":
        return load_welfare(benchmarks_dir / "welfare-qa-ko", questions, seed)
    raise InputError(f"unknown benchmark {name!r}: use {' or '.join(BENCHMARKS)}")


# -- articles -----------------------------------------------------------------------------------

def _plain(text: str) -> list[str]:
    """Lines of dataset text that Markdown will read back as the same plain text."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"^[#>\s]+", "", line.strip())
        line = line.replace("{", "(").replace("}", ")").replace("<", "〈").replace(">", "〉")
        line = line.replace("`", "'")
        if line and not re.fullmatch(r"[-=*_ ]{3,}", line):
            out.append(line)
    return out


def article_markdown(article: ExternalArticle) -> str:
    """One lint-clean published article holding the dataset text."""
    meta = {"id": article.id, "title": article.title, "type": "faq", "audience": "all",
            "category": CATEGORY, "tags": [], "channels": ["chat"], "status": "published",
            "effective_from": "2020-01-01", "review_by": "2099-12-31", "owner": "benchmark",
            "version": 1}
    lines = _plain(article.text) or [article.title]
    summary = (sentences(lines[0]) or [lines[0]])[0]
    body = ["## 요약", summary, "", "## 안내", "\n\n".join(lines), "", "## 응대 예시",
            _SCRIPT, "", "## 예상 문의"]
    for question, answer in _QUESTIONS:
        body += [f"### Q. {question}", answer, ""]
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, default_flow_style=None)
    return f"---\n{front}---\n\n" + "\n".join(body)


def write_kb(articles: Iterable[ExternalArticle], kb_dir: Path) -> list[Path]:
    """Write the articles as `faq/<id>.md` under `kb_dir`."""
    folder = kb_dir / "faq"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for article in articles:
        path = folder / f"{article.id}.md"
        path.write_text(article_markdown(article), encoding="utf-8")
        paths.append(path)
    return paths


# -- the run ------------------------------------------------------------------------------------

def _dense_model(settings: Settings | None) -> dict[str, object]:
    """The settings that choose and reach the dense model, to carry into the benchmark's own."""
    if settings is None:
        return {}
    names = ("embed_model", "models_dir", "embedder", "embed_base_url", "embed_api_key",
             "embed_query_prompt", "embed_document_prompt")
    return {name: getattr(settings, name) for name in names}


def run_external(name: str, *, questions: int | None = DEFAULT_QUESTIONS,
                 systems: Iterable[str] = SYSTEMS, benchmarks_dir: Path = BENCHMARKS_DIR,
                 cache_dir: Path = CACHE_DIR, k: int = 5, seed: int = 0,
                 progress: bool = True, dense: Settings | None = None) -> EvalReport:
    """Index a sample of benchmark `name` in a temporary KB and score the four systems, with
    the dense model of `dense` (the configured settings; e5-small when None)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    systems = select_systems(systems)
    bench = load_benchmark(name, benchmarks_dir, questions, seed)
    with tempfile.TemporaryDirectory(prefix=f"suggester-{name}-",
                                     ignore_cleanup_errors=True) as folder:
        root = Path(folder)
        write_kb(bench.articles, root / "kb")
        settings = load_settings({"data_dir": root / "data", "kb_dir": root / "kb",
                                  "cache_dir": cache_dir, "chroma_host": "",
                                  "collection": f"bench-{name}",
                                  **_dense_model(dense)}, environ={})
        clock = time.perf_counter()
        synced = Indexer(settings).sync(progress=progress)
        timings["index_s"] = time.perf_counter() - clock
        if synced.skipped:
            raise InputError(f"the converted {name} articles do not pass lint: "
                             f"{synced.skipped[0]}")
        retriever = Retriever(settings)
        clock = time.perf_counter()
        vectors = query_vectors(settings, retriever.embedder, [q.text for q in bench.queries],
                                progress)
        timings["embed_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        records = [search_all(retriever, q, systems, vectors[q.text], k)[0]
                   for q in progress_bar(bench.queries, name, progress)]
        timings["items_s"] = time.perf_counter() - clock
        meta = run_meta(settings, started, timings, bench.queries, k)
    meta.update(articles=len(bench.articles), chunks_embedded=synced.embedded,
                kb_dir="(temporary)", seed=seed)
    return EvalReport(
        name=f"external/{name}", split="sample", systems=systems,
        retrieval=summarise_retrieval(bench.queries, records, systems), no_answer=None,
        suggestions={"skipped": "external benchmark: retrieval only"}, ragas={},
        items=records, meta=meta)
