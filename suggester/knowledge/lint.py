"""Check articles against the format in kb/README.md and report findings as `path:line`."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from suggester.errors import ArticleError
from suggester.knowledge.articles import (
    ABOUT_THE_CUSTOMER,
    ARTICLE_ID,
    ARTICLE_TYPES,
    AUDIENCES,
    CHANNELS,
    ESCALATION,
    FOLLOW_UPS,
    GUIDE,
    INTERNAL_MEMO,
    INTERNAL_SECTIONS,
    KNOWN_SECTIONS,
    PLACEHOLDERS,
    POLICY,
    RISK_FLAGS,
    SCRIPT,
    STATUSES,
    SUMMARY,
    TAXONOMY,
    TYPE_RANK,
    Article,
    as_date,
    cue_pattern,
    discover,
    parse_article,
)

ERROR, WARNING = "error", "warning"
REQUIRED_FIELDS = (
    "id", "title", "type", "audience", "category", "tags", "channels", "status",
    "effective_from", "review_by", "owner", "version",
)
OPTIONAL_FIELDS = ("supersedes", "related", "handles_flags", "escalation_when",
                   "flag_cues", "not_offered")
MIN_QUESTIONS = 2
_BRACED = re.compile(r"\{([^{}\n]*)\}")


@dataclass(frozen=True, kw_only=True, order=True)
class Finding:
    path: Path
    line: int
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


@dataclass(kw_only=True)
class LintReport:
    articles: list[Article] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def published(self) -> list[Article]:
        return [a for a in self.articles if a.status == "published"]

    def summary(self) -> str:
        categories = {a.category for a in self.published} & set(TAXONOMY)
        return (
            f"{len(self.articles)} articles ({len(self.published)} published), "
            f"{len(self.errors)} errors, {len(self.warnings)} warnings, "
            f"categories covered by published articles: {len(categories)}/{len(TAXONOMY)}"
        )


def lint_kb(kb_dir: Path | str, today: dt.date | None = None) -> LintReport:
    """Read and check every article under `kb_dir`."""
    today = today or dt.date.today()
    report = LintReport()
    kb_dir = Path(kb_dir)
    if not kb_dir.is_dir():
        report.findings.append(Finding(path=kb_dir, line=1, severity=ERROR,
                                       message="knowledge base folder does not exist"))
        return report
    for path in discover(kb_dir):
        try:
            article = parse_article(path.read_bytes(), path)
        except ArticleError as exc:
            report.findings.append(_from_error(exc))
            continue
        except OSError as exc:
            report.findings.append(Finding(path=path, line=1, severity=ERROR,
                                           message=f"cannot read file: {exc}"))
            continue
        report.articles.append(article)
        report.findings.extend(check_article(article, today))
    report.findings.extend(check_references(report.articles))
    report.findings.sort()
    return report


def lint_source(source: str, path: Path, others: Iterable[Article],
                today: dt.date | None = None) -> list[Finding]:
    """Check one article's source as the editor would save it, against the rest of the KB."""
    today = today or dt.date.today()
    try:
        article = parse_article(source, path)
    except ArticleError as exc:
        return [_from_error(exc)]
    rest = [a for a in others if a.path != path]
    findings = check_article(article, today) + [
        f for f in check_references([*rest, article]) if f.path == path
    ]
    return sorted(findings)


def _from_error(exc: ArticleError) -> Finding:
    return Finding(path=exc.path, line=exc.line, severity=ERROR, message=exc.message)


def check_article(article: Article, today: dt.date) -> list[Finding]:
    """All the rules that need only the article itself."""
    findings: list[Finding] = []
    findings += _check_fields(article, today)
    findings += _check_sections(article)
    findings += _check_placeholders(article)
    findings += _check_customer_voice(article)
    return findings


def _finding(article: Article, key: str, message: str, severity: str = ERROR) -> Finding:
    return Finding(path=article.path, line=article.line_of(key), severity=severity,
                   message=message)


def _check_fields(article: Article, today: dt.date) -> list[Finding]:
    meta = article.meta
    findings = [
        _finding(article, name, f"missing required field '{name}'")
        for name in REQUIRED_FIELDS if meta.get(name) in (None, "")
    ]
    findings += [
        _finding(article, name, f"unknown field '{name}' (allowed: "
                                f"{', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)})", WARNING)
        for name in meta if name not in REQUIRED_FIELDS + OPTIONAL_FIELDS
    ]
    findings += _check_choices(article)
    findings += _check_escalation_when(article)
    findings += _check_flag_cues(article)
    findings += _check_not_offered(article)
    findings += _check_identity(article)
    findings += _check_dates(article, today)
    version = meta.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or version < 1):
        findings.append(_finding(article, "version",
                                 f"version must be a whole number ≥ 1, got {version!r}"))
    return findings


def _check_choices(article: Article) -> list[Finding]:
    meta = article.meta
    findings = []
    for name, allowed in (("type", ARTICLE_TYPES), ("audience", AUDIENCES),
                          ("status", STATUSES), ("category", TAXONOMY)):
        value = meta.get(name)
        if value not in (None, "") and value not in allowed:
            findings.append(_finding(article, name, f"{name} {value!r} is not one of: "
                                                    f"{', '.join(allowed)}"))
    for name, allowed in (("channels", CHANNELS), ("tags", None), ("related", None),
                          ("handles_flags", RISK_FLAGS)):
        value = meta.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            findings.append(_finding(article, name, f"{name} must be a list of text values"))
        elif allowed and (bad := [v for v in value if v not in allowed]):
            findings.append(_finding(article, name, f"unknown {name}: {', '.join(bad)} "
                                                    f"(allowed: {', '.join(allowed)})"))
        elif name == "channels" and not value:
            findings.append(_finding(article, name, "channels must name at least one channel"))
    return findings


def _check_escalation_when(article: Article) -> list[Finding]:
    """`escalation_when` maps risk flags to conditions: a flag name, or a cue; the article
    needs the rule it hands over."""
    findings = _check_flag_map(article, "escalation_when", flags_allowed=True)
    if "escalation_when" in article.meta and article.section(ESCALATION) is None:
        findings.append(_finding(article, "escalation_when", (
            f"escalation_when hands flags to this article but it has no ## {ESCALATION} "
            "section: add the rule agents should follow")))
    return findings


def _check_flag_cues(article: Article) -> list[Finding]:
    """`flag_cues` maps risk flags to cues; only an article that handles a flag lists its cues,
    so the flag's words live with its policy."""
    findings = _check_flag_map(article, "flag_cues", flags_allowed=False)
    findings += [_finding(article, "flag_cues", (
        f"flag_cues lists cues for {flag} but the article does not handle it: add {flag} to "
        "handles_flags, or move the cues to the article that does"))
        for flag in article.flag_cues if flag in RISK_FLAGS and flag not in article.handles_flags]
    if "personal_data" in article.flag_cues:
        findings.append(_finding(article, "flag_cues", (
            "personal_data is found by the personal-data detector (phone, account, card, "
            "address patterns), not by cues: remove it from flag_cues")))
    return findings


def _check_not_offered(article: Article) -> list[Finding]:
    """`not_offered` maps services we do not offer to the cues that name them."""
    value = article.meta.get("not_offered")
    if value is None:
        return []
    if not isinstance(value, dict) or not value or not all(
            isinstance(v, list) and v and all(isinstance(c, str) and c.strip() for c in v)
            for v in value.values()):
        return [_finding(article, "not_offered", (
            "not_offered must map each service we do not offer to a list of cues, "
            "e.g. {경매: [경매, 입찰]}"))]
    return _cue_errors(article, "not_offered", [c for cues in value.values() for c in cues])


def _check_not_offered_answered(articles: list[Article]) -> list[Finding]:
    """A not-offered cue that a published article's customer-facing text uses names something
    the KB may answer: the questions about it would be held instead."""
    published = [a for a in articles if a.status == "published"]
    texts = {a.id: "\n".join(s.text for s in a.walk() if not s.internal) for a in published}
    findings = []
    for article in published:
        if _check_not_offered(article):
            continue  # malformed: reported by the article's own check
        for service, cues in article.not_offered.items():
            for cue in cues:
                pattern = cue_pattern(cue)
                where = [(other, found.group(0)) for other, text in texts.items()
                         if (found := pattern.search(text))]
                findings += [_finding(article, "not_offered", (
                    f"not_offered cue {cue!r} ({service}) matches {other}'s customer-facing "
                    f"text ({match!r}): the KB may answer it (a question {other} ranks first "
                    "for is answered, any other is held); make the cue more specific or drop "
                    "the service"), WARNING)
                    for other, match in where]
    return findings


def _cue_errors(article: Article, name: str, cues: list[str]) -> list[Finding]:
    """A finding for each cue that does not compile as a pattern."""
    findings = []
    for cue in cues:
        try:
            cue_pattern(cue)
        except re.error as exc:
            findings.append(_finding(article, name, (
                f"{name} cue {cue!r} is not a valid pattern ({exc}): escape "
                "( ) [ ] | * + ? with a backslash to match them as text")))
    return findings


def _check_flag_map(article: Article, name: str, *, flags_allowed: bool) -> list[Finding]:
    """A front-matter map from risk flags to lists of cues (or, if allowed, flag names): known
    flags, and cues that compile as patterns."""
    value = article.meta.get(name)
    if value is None:
        return []
    if not isinstance(value, dict) or not all(
            isinstance(v, list) and v and all(isinstance(c, str) and c.strip() for c in v)
            for v in value.values()):
        return [_finding(article, name, (
            f"{name} must map risk flags to lists of text, e.g. {{off_platform: [링크]}}"))]
    findings = [_finding(article, name, (
        f"unknown {name} flag: {flag} (allowed: {', '.join(RISK_FLAGS)})"))
        for flag in value if flag not in RISK_FLAGS]
    findings += _cue_errors(article, name, [
        c for items in value.values() for c in items if not (flags_allowed and c in RISK_FLAGS)])
    return findings


def _check_identity(article: Article) -> list[Finding]:
    findings = []
    article_id = article.meta.get("id")
    if isinstance(article_id, str) and article_id:
        if not ARTICLE_ID.fullmatch(article_id):
            findings.append(_finding(article, "id", f"id {article_id!r} must be a slug of "
                                                    "lowercase letters, digits and hyphens"))
        elif article_id != article.path.stem:
            findings.append(_finding(article, "id", f"id {article_id!r} must equal the file "
                                                    f"name ({article.path.stem}.md)"))
    elif article_id not in (None, ""):
        findings.append(_finding(article, "id", "id must be text"))
    folder = article.path.parent.name
    if folder in ARTICLE_TYPES and article.meta.get("type") in ARTICLE_TYPES \
            and folder != article.meta.get("type"):
        findings.append(_finding(article, "type", f"type '{article.meta['type']}' does not match "
                                                  f"its folder '{folder}/'"))
    return findings


def _check_dates(article: Article, today: dt.date) -> list[Finding]:
    findings = []
    for name in ("effective_from", "review_by"):
        value = article.meta.get(name)
        if value not in (None, "") and as_date(value) is None:
            findings.append(_finding(article, name,
                                     f"{name} must be a date YYYY-MM-DD, got {value!r}"))
    review_by = article.review_by
    if review_by and review_by < today and article.status == "published":
        findings.append(_finding(article, "review_by",
                                 f"review overdue since {review_by.isoformat()}", WARNING))
    return findings


def _check_sections(article: Article) -> list[Finding]:
    # Drafts may be incomplete: the same gaps are warnings until the article is published.
    severity = ERROR if article.status == "published" else WARNING
    findings = []
    titles = [s.title for s in article.sections]
    for section in article.sections:
        if section.title not in KNOWN_SECTIONS:
            findings.append(Finding(path=article.path, line=section.line, severity=WARNING,
                                    message=f"unknown section '## {section.title}' (known: "
                                            f"{', '.join(KNOWN_SECTIONS)})"))
    for title, count in Counter(titles).items():
        if count > 1:
            first = next(s for s in article.sections[::-1] if s.title == title)
            findings.append(Finding(path=article.path, line=first.line, severity=ERROR,
                                    message=f"section '## {title}' appears {count} times"))
    body_line = article.body_line
    for required in (SUMMARY, SCRIPT, FOLLOW_UPS):
        section = article.section(required)
        if section is None:
            findings.append(Finding(path=article.path, line=body_line, severity=severity,
                                    message=f"missing section '## {required}'"))
        elif not section.full_text().strip():
            findings.append(Finding(path=article.path, line=section.line, severity=severity,
                                    message=f"section '## {required}' is empty"))
    if POLICY not in titles and GUIDE not in titles:
        findings.append(Finding(path=article.path, line=body_line, severity=severity,
                                message=f"missing section '## {POLICY}' or '## {GUIDE}'"))
    findings += _check_questions(article, severity)
    return findings


def _check_questions(article: Article, severity: str) -> list[Finding]:
    follow_ups = article.section(FOLLOW_UPS)
    if follow_ups is None:
        return []
    findings = [
        Finding(path=article.path, line=child.line, severity=WARNING,
                message=f"'### {child.title}' under '## {FOLLOW_UPS}' should start with 'Q.'")
        for child in follow_ups.children if not child.title.startswith("Q")
    ]
    questions = article.questions()
    findings += [
        Finding(path=article.path, line=q.line, severity=severity,
                message=f"anticipated question '{q.title}' has no answer")
        for q in questions if not q.full_text().strip()
    ]
    if len(questions) < MIN_QUESTIONS:
        findings.append(Finding(path=article.path, line=follow_ups.line, severity=severity,
                                message=f"'## {FOLLOW_UPS}' needs at least {MIN_QUESTIONS} "
                                        f"'### Q.' blocks, found {len(questions)}"))
    return findings


def _check_placeholders(article: Article) -> list[Finding]:
    findings = []
    lines = article.source.split("\n")
    for offset, line in enumerate(lines[article.body_line - 1:]):
        number = article.body_line + offset
        for match in _BRACED.finditer(line):
            name = match.group(1).strip()
            if name not in PLACEHOLDERS:
                findings.append(Finding(path=article.path, line=number, severity=ERROR,
                                        message=f"unknown placeholder {match.group(0)} "
                                                f"(known: {_known_placeholders()})"))
        stray = _BRACED.sub("", line)
        if "{" in stray or "}" in stray:
            findings.append(Finding(path=article.path, line=number, severity=ERROR,
                                    message="unbalanced '{' or '}': placeholders look like "
                                            "{고객명}"))
    return findings


def _check_customer_voice(article: Article) -> list[Finding]:
    """Customer-facing text that speaks of 고객이/고객의: guidance for agents, which drafts
    must not quote (the composer leaves such sentences out)."""
    findings = []
    internal = False
    lines = article.source.split("\n")
    for offset, line in enumerate(lines[article.body_line - 1:]):
        if line.startswith("## "):
            internal = line[3:].strip() in INTERNAL_SECTIONS
        elif not internal and ABOUT_THE_CUSTOMER.search(line):
            findings.append(Finding(
                path=article.path, line=article.body_line + offset, severity=WARNING,
                message="customer-facing text speaks of the customer ('고객이', '고객의') or "
                        "tells the agent what to say ('…다고 말씀드려 주세요'): a reply speaks to "
                        f"고객님; guidance for agents belongs in '## {INTERNAL_MEMO}'"))
    return findings


def _known_placeholders() -> str:
    return " ".join("{" + name + "}" for name in PLACEHOLDERS)


def check_references(articles: list[Article]) -> list[Finding]:
    """Rules across articles: unique ids, and related/supersedes pointing to real ids."""
    findings = []
    first_by_id: dict[str, Article] = {}
    for article in articles:
        previous = first_by_id.setdefault(article.id, article)
        if previous is not article:
            findings.append(_finding(article, "id", f"duplicate id '{article.id}' (also in "
                                                    f"{previous.path})"))
    for article in articles:
        targets = [("related", target) for target in article.related]
        supersedes = article.meta.get("supersedes")
        if supersedes not in (None, ""):
            targets.append(("supersedes", str(supersedes)))
        for key, target in targets:
            if target == article.id:
                findings.append(_finding(article, key, f"{key} points to the article itself"))
            elif target not in first_by_id:
                findings.append(_finding(article, key, f"{key} points to unknown id '{target}'"))
    findings += _check_succession(articles, first_by_id)
    return findings + _check_flag_owners(articles) + _check_not_offered_answered(articles)


def _check_succession(articles: list[Article], by_id: dict[str, Article]) -> list[Finding]:
    """`supersedes` chains: one successor per article, a later date, no cycle."""
    findings = []
    successors: dict[str, list[Article]] = {}
    for article in articles:
        old_id = article.supersedes
        if old_id and old_id != article.id and old_id in by_id:
            successors.setdefault(old_id, []).append(article)
            old = by_id[old_id]
            if article.effective_from and old.effective_from \
                    and article.effective_from <= old.effective_from:
                findings.append(_finding(
                    article, "effective_from",
                    f"effective_from {article.effective_from} must be later than that of the "
                    f"article it supersedes, '{old_id}' ({old.effective_from})"))
    for old_id, newer in successors.items():
        if len(newer) > 1:
            findings += [_finding(a, "supersedes", f"'{old_id}' is superseded by "
                                                   f"{len(newer)} articles "
                                                   f"({', '.join(sorted(n.id for n in newer))}): "
                                                   "an article has one successor") for a in newer]
    for article in articles:
        seen = [article.id]
        current = article
        while current.supersedes in by_id and current.supersedes != current.id:
            current = by_id[current.supersedes]
            if current.id == article.id:
                findings.append(_finding(article, "supersedes", "supersedes makes a cycle: "
                                                                + " → ".join([*seen, article.id])))
                break
            if current.id in seen:  # a cycle that does not pass through this article
                break
            seen.append(current.id)
    return findings


def _check_flag_owners(articles: list[Article]) -> list[Finding]:
    """Each flag's escalation rule must come from one article: the first by type (policy, faq,
    exception) among the published articles that handle it; two of that type are ambiguous."""
    findings = []
    for flag in RISK_FLAGS:
        handlers = [a for a in articles if flag in a.handles_flags and a.status == "published"]
        for article in handlers:
            if article.section(ESCALATION) is None:
                findings.append(_finding(article, "handles_flags", (
                    f"handles_flags names {flag} but the article has no ## {ESCALATION} "
                    "section: agents get no rule for the flag from it"), WARNING))
        ranked = sorted(handlers, key=lambda a: TYPE_RANK.get(a.type, len(TYPE_RANK)))
        if len(ranked) > 1 and ranked[0].type == ranked[1].type:
            tied = [a.id for a in ranked if a.type == ranked[0].type]
            findings += [_finding(a, "handles_flags", (
                f"{len(tied)} {ranked[0].type} articles handle {flag} ({', '.join(tied)}): "
                "the flag's escalation rule must come from one; keep it on one of them"))
                for a in ranked if a.id in tied]
    return findings


