"""Query analysis: the terms BM25 looks up, the identifiers that earn exact-match boosts, the kind of query.

A query is *literal* when every token is an identifier (``DATABASE_URL``, ``redis.host``): the user
knows the name and wants its definition. Otherwise it is a *question*; a question may still hold
identifiers (``What does COMPOSE_IGNORE_ORPHANS=true change?``), which keep their boosts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from kb.keyword import STOPWORDS, analyze, query_terms

__all__ = ["ParsedQuery", "query_identifiers", "is_literal_query", "span_names", "word_root"]

_QTOKEN = re.compile(r"[\w$@]+(?:[.\-/:][\w$@]+)*")
PROSE_IDIOMS = True
"""Leave prose abbreviations and slash-joined words of a question out of identifiers and terms."""
_ABBREVIATION = re.compile(r"^(?:[a-z]\.)+[a-z]?$|^(?:etc|vs|cf|approx|incl|resp)$", re.IGNORECASE)
"""Prose abbreviations (``e.g.``, ``i.e.``, ``a.k.a.``, ``etc.``): never identifiers, never terms."""
_WORDS = re.compile(r"^[A-Za-z]+(?:-[A-Za-z]+)*$")
_CODE_SPAN = re.compile(r"(?<![\w`])`([^`\n]+)`(?![\w`])")
"""A span in backticks, as Markdown and chat quote code (a backtick inside a word, ``it`s``, opens none)."""
_SPAN_NAME = re.compile(r"^(?:\$\{?)?(?P<name>-{0,2}[\w$@][\w$@.\-/:]*?)\}?(?:=.*)?$")
"""What a span names: ``-labelname``, ``--kubelet-service``, ``$PORT`` and ``${PORT}`` (``PORT``),
``FOO=bar`` (``FOO``: the value is not a name)."""
MAX_SPAN_NAME = 200
CAPS_NAME = 6
"""A word in capitals this long or longer is a name in a question (``GOTRACEBACK``, ``PGDATA``,
``GOMAXPROCS``); a shorter one is an acronym (``CPU``, ``HTTP``, ``NGINX``): of the capitalised
words in the 283 questions of kb's six question sets, every one under six letters is an acronym and
the one longer is an environment variable. A question mostly in capitals is shouted, not named.
``0`` turns it off."""
CODE_SPANS = True
"""Names in backticks are identifiers whatever their shape (see :func:`query_identifiers`)."""
_MANY = re.compile(r"\b(?:which|list|all the)\b", re.IGNORECASE)
MANY_WITHIN = 60
"""A question asks for many things when "which", "list" or "all the" comes within its first 60
characters ("In the chart, which values ...")."""


_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ers", "er", "ed", "es", "ly", "s", "y", "e")


@lru_cache(maxsize=65536)
def word_root(word: str) -> str:
    """A word's root for matching inflections: ``healthy``, ``health`` -> ``health``;
    ``retries``, ``retry`` -> ``retr``. Identifier forms (with ``_`` ``.`` ``-``) stay whole."""
    if not word.isalpha() or len(word) < 5:
        return word
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            word = word[: -len(suf)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
                word = word[:-1]  # running -> runn -> run
            return word
    return word


def _prose(token: str, alone: bool) -> bool:
    """Whether a token that looks like an identifier is prose in a question: an abbreviation
    (``e.g``), or words joined by a slash (``before/after-event``, ``TCP/IP``, ``and/or``)."""
    if not PROSE_IDIOMS:
        return False
    if _ABBREVIATION.match(token):
        return True
    if alone or "/" not in token:
        return False
    return all(_WORDS.match(part) for part in token.split("/"))


def span_names(query: str) -> list[str]:
    """The names ``query`` sets in backticks, lower case, as written (``-labelname``, ``--set``,
    ``_JAVA_OPTIONS``); a span with spaces (```docker compose up```) is a command, not a name, and a
    bare stop word or number (```the```, ```42```) is none."""
    out: list[str] = []
    for span in _CODE_SPAN.findall(query) if CODE_SPANS else ():
        span = span.strip()
        m = _SPAN_NAME.match(span) if len(span) <= MAX_SPAN_NAME and len(span.split()) == 1 else None
        if m is None:
            continue
        name = m.group("name").rstrip(".:/-").lower()
        word = name.lstrip("-")
        if len(word) < 2 or word.isdigit() or (name == word and word in STOPWORDS):
            continue
        if name not in out:
            out.append(name)
    return out


def query_identifiers(query: str) -> list[str]:
    """Tokens of ``query`` that look like identifiers (lower case): ``DATABASE_URL``,
    ``fraud.review_threshold``, ``maxConnections``, ``docker-compose.yml``, ``AKIA``. A word in
    capitals counts in a question from :data:`CAPS_NAME` letters on (``GOTRACEBACK``; ``HTTP`` is
    an acronym), and alone at any length; a hyphenated word counts only when it is the whole query;
    any name the user set in backticks counts, as written (:func:`span_names`: ```-labelname```,
    ```--set```, ```replicas```), since that is how people quote a name."""
    tokens = _QTOKEN.findall(query)
    out = span_names(query)
    quoted = {n.strip("_-") for n in out}
    words = [t for t in tokens if t.isalpha() and len(t) > 1]
    shouted = len(words) >= 3 and 2 * sum(t.isupper() for t in words) >= len(
        words
    )  # capitals are not names  # a quoted name stays as written (``_JAVA_OPTIONS``)
    for t in tokens:
        t = t.strip("_")
        if len(t) < 2:
            continue
        alone = len(tokens) == 1
        if _prose(t, alone):
            continue
        ident = (
            "_" in t
            or "." in t
            or "/" in t
            or re.search(r"[a-z][A-Z]", t) is not None
            or (t.isupper() and sum(c.isalpha() for c in t) >= 3 and alone)
            or (CAPS_NAME > 0 and not shouted and t.isupper() and t.isalpha() and len(t) >= CAPS_NAME)
            or (re.search(r"[A-Za-z]", t) is not None and re.search(r"\d", t) is not None and alone)
            or ("-" in t and alone)
            or (":" in t and alone)
        )
        if ident and t.lower() not in out and t.lower() not in quoted:
            out.append(t.lower())
    if not out and len(tokens) == 1 and tokens[0].lower() not in STOPWORDS and len(tokens[0]) >= 3:
        out.append(tokens[0].lower())
    return out


def is_literal_query(query: str, idents: list[str] | None = None) -> bool:
    """True when every token of the query is an identifier (``DATABASE_URL``, ``redis.host``,
    `` `--set` ``); ``idents``: the query's :func:`query_identifiers`, when already known."""
    tokens = _QTOKEN.findall(query)
    if not tokens:
        return False
    names = query_identifiers(query) if idents is None else idents
    known = {t.strip("_").lower() for name in names for t in _QTOKEN.findall(name)}  # `--set` holds set
    return all(t.strip("_").lower() in known for t in tokens if len(t.strip("_")) >= 2)


def _ident_regex(ident: str) -> re.Pattern[str]:
    """``ident`` standing alone (not part of a longer identifier), any case."""
    return re.compile(r"(?<![\w$@])" + re.escape(ident) + r"(?![\w$@]|[.\-/][\w$@])", re.IGNORECASE)


def _define_regex(ident: str) -> re.Pattern[str]:
    """A line that assigns ``ident`` (its last dotted part): ``IDENT=``, ``ident:``, ``- ident:``."""
    last = ident.rsplit(".", 1)[-1] if "/" not in ident else ident
    return re.compile(
        r"""^[ \t]*(?:export[ \t]+|-[ \t]+)?["']?""" + re.escape(last) + r"""["']?[ \t]*(?::(?:[ \t]|$)|=)""",
        re.IGNORECASE | re.MULTILINE,
    )


def _terms(text: str) -> list[str]:
    """BM25 terms of a query; a question's prose abbreviations are left out."""
    if not PROSE_IDIOMS:
        return query_terms(text)
    prose = _QTOKEN.sub(lambda m: " " if _ABBREVIATION.match(m.group()) else m.group(), text)
    return query_terms(prose) or query_terms(text)


@dataclass
class ParsedQuery:
    """A query taken apart once, for candidates, fusion and snippets."""

    text: str
    terms: list[str]
    """Analysed BM25 terms, distinct, in order."""
    idents: list[str]
    """Identifiers (lower case) that earn exact-match boosts."""
    literal: bool
    ident_res: list[re.Pattern[str]] = field(default_factory=list)
    define_res: list[re.Pattern[str]] = field(default_factory=list)
    ident_terms: set[str] = field(default_factory=set)
    """The analysed terms of the identifiers (their whole forms and parts)."""
    asks_for_many: bool = False
    """A question after several things ("Which stacks ...", "List the charts ..."): search answers
    with each matching file once."""

    @classmethod
    def parse(cls, text: str) -> ParsedQuery:
        idents = query_identifiers(text)
        return cls(
            text=text,
            terms=_terms(text),
            idents=idents,
            literal=is_literal_query(text, idents),
            ident_res=[_ident_regex(i) for i in idents],
            define_res=[_define_regex(i) for i in idents],
            ident_terms={t for i in idents for t in analyze(i)},
            asks_for_many=_MANY.search(text[:MANY_WITHIN]) is not None,
        )
