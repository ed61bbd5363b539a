"""The `suggester` command: lint, index, search, suggest and serve the knowledge base."""

from __future__ import annotations

import logging
import sys
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


@main.command()
@click.option("--quiet", "-q", is_flag=True, help="Print errors only, not warnings.")
@pass_context
def lint(context: _Context, quiet: bool) -> None:
    """Validate every article; exit 1 when any has errors."""
    from suggester.lint import lint_kb

    report = lint_kb(context.settings.kb_dir)
    for finding in report.findings:
        if quiet and finding.severity != "error":
            continue
        colour = "red" if finding.severity == "error" else "yellow"
        click.secho(str(finding), fg=colour)
    click.echo(report.summary())
    sys.exit(0 if report.ok else 1)


@main.command()
@click.option("--port", type=int, default=None, help="Port (default: $SUGGESTER_PORT or 8000).")
@click.option("--host", default=None, help="Bind address (default: 127.0.0.1).")
@pass_context
def serve(context: _Context, port: int | None, host: str | None) -> None:
    """Serve the web console and API."""
    from web import create_app

    settings = context.settings
    app = create_app(settings=settings)
    app.run(host=host or settings.host, port=port or settings.port, threaded=True)


if __name__ == "__main__":  # pragma: no cover
    main()
