"""Which chunk texts are worth the embedding model's time.

A chunk of base64, hashes, checksums, numbers or a lock file's pins carries nothing a sentence
model can use: embedding it costs model time and adds near-random vectors that crowd real answers.
Such chunks are stored and keyword-searchable like any other (``chunks.embed = false``), but not
embedded. The rules look at the chunk body (the lines after the context line):

* files whose whole content is machine-written pins (``package-lock.json``, ``yarn.lock``,
  ``go.sum``, ``Cargo.lock``, ...): never embedded;
* release histories (``CHANGELOG.md``, ``CHANGES``, ``HISTORY.md``, ``NEWS``, ``RELEASES.md``):
  never embedded. They say what changed in which release, not how anything is configured, and
  they are long: a fifth of the dev corpus's embeddable texts (20,466 of 93,004) were Helm charts'
  changelogs ("[bitnami/kafka] Release 12.3.1"). Left out, the dev build embeds 22% fewer texts
  and every hybrid MRR@10 and answer figure on both question sets is unchanged (one semantic
  rank moved by a bf16 tie: 0.5970 against 0.5964). A version or key they name is still found by
  keyword;
* a body of at least :data:`MIN_CHARS` visible characters in which letters of word-like
  tokens (runs of letters between non-alphanumeric characters, three to forty long, in one case,
  capitalised or camelCase: ``port``, ``REGION``, ``maxConnections``) make up less than
  :data:`MIN_WORD_SHARE` of the visible characters: not embedded. Base64, hex and hash tokens mix
  digits and cases, so they do not count.

Short bodies are always embedded (they cost little, and ``port: 8080`` or ``replicas: 3`` mean
something); certificate bodies, checksum tables, IP lists and number arrays are not.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

__all__ = ["embeddable", "is_release_history", "LOCK_FILES", "RELEASE_HISTORIES", "MIN_WORD_SHARE", "MIN_CHARS"]

LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lock",
        "poetry.lock",
        "pipfile.lock",
        "pdm.lock",
        "uv.lock",
        "composer.lock",
        "cargo.lock",
        "gemfile.lock",
        "go.sum",
        "mix.lock",
        "pubspec.lock",
        "packages.lock.json",
        "flake.lock",
        "chart.lock",
        "requirements.lock",
        "gradle.lockfile",
        "conda-lock.yml",
    }
)
RELEASE_HISTORIES = frozenset({"changelog", "changes", "history", "news", "releases", "release-notes", "release_notes"})
"""File stems (any case, any extension among :data:`_HISTORY_SUFFIXES`) of release histories."""
_HISTORY_SUFFIXES = frozenset({"", ".md", ".markdown", ".txt", ".rst"})
MIN_WORD_SHARE = 0.25
MIN_CHARS = 80

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_WORDLIKE = re.compile(r"[a-z]+(?:[A-Z][a-z]+)*|(?:[A-Z][a-z]+)+|[A-Z]+")


_NUMBERED = re.compile(r"([A-Za-z]{2,})\d{1,3}")


def _word_letters(body: str) -> int:
    n = 0
    for tok in _TOKEN.findall(body):
        if len(tok) > 40:
            continue
        if not tok.isalpha():  # service2, http2, ipv4: a word with a short number
            m = _NUMBERED.fullmatch(tok)
            if m is None:
                continue
            tok = m.group(1)
        if len(tok) >= 3 and _WORDLIKE.fullmatch(tok):
            n += len(tok)
    return n


def is_release_history(path: str) -> bool:
    """``CHANGELOG.md``, ``CHANGES.rst``, ``HISTORY``, ``NEWS.txt``, ``RELEASES.md``, ... (any case)."""
    name = PurePosixPath(path.lower())
    return name.stem in RELEASE_HISTORIES and name.suffix in _HISTORY_SUFFIXES


def embeddable(path: str, text: str) -> bool:
    """Whether a chunk (``text`` including its context line) should be embedded."""
    if PurePosixPath(path).name.lower() in LOCK_FILES or is_release_history(path):
        return False
    body = text.split("\n", 1)[1] if "\n" in text else text
    visible = len("".join(body.split()))  # characters that are not whitespace (str.isspace)
    if visible == 0:
        return False
    if visible < MIN_CHARS:
        return True
    return _word_letters(body) / visible >= MIN_WORD_SHARE
