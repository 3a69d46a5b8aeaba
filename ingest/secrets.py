"""Find credentials in parsed files and replace them with markers before anything is stored.

A secret is either a value matching a credential pattern anywhere (AWS access key ids, Stripe-style
``sk_live_`` keys, GitHub/Slack/Google tokens, JWTs, private-key blocks, passwords inside URLs), or a
non-placeholder string under a key whose name ends in password / secret / token / api key / ...
Placeholders (``changeme``, ``${DB_PASSWORD}``, ``<your-token>``, empty, ``xxx``...) are not secrets.

Each secret becomes a ``plaintext-secret`` problem with a fingerprint (a hash prefix), never the
value, and every occurrence in records, section texts and documents is replaced by
``[REDACTED:plaintext-secret:<fingerprint>]``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from kb.keypaths import key_segments
from kb.types import ParsedFile, Problem

__all__ = ["redact", "fingerprint", "marker", "is_placeholder", "secret_key", "PATTERNS"]

PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("a private key block", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b")),
    ("a Stripe-style secret key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("a GitHub token", re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
]

# scheme://user:password@host — the password part only
_URL_PASSWORD = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'\"]+:([^\s@/'\"]+)@")

_SECRET_LAST_WORDS = {"password", "passwd", "pwd", "pass", "pw", "passphrase", "secret", "token", "credential",
                      "credentials"}
_SECRET_LAST_PAIRS = {
    ("api", "key"), ("access", "key"), ("secret", "key"), ("private", "key"), ("auth", "key"),
    ("signing", "key"), ("encryption", "key"), ("master", "key"), ("client", "secret"), ("app", "key"),
}
_SECRET_JOINED = {"apikey", "secretkey", "accesskey", "privatekey", "authtoken", "accesstoken", "clientsecret"}

_PLACEHOLDER_WORDS = {
    "changeme", "change-me", "change_me", "changeit", "example", "dummy", "placeholder", "redacted",
    "none", "null", "nil", "undefined", "todo", "tbd", "xxx", "secret", "password", "token", "test",
    "sample", "fake", "notset", "not-set", "your-secret", "your-token", "your-password", "mypassword",
    "true", "false", "required", "optional", "string", "empty", "pass", "passwd", "pwd", "admin",
}
_PLACEHOLDER_RE = re.compile(
    r"""^(?:
        \$\{[^}]*\}.*                  # ${VAR}, ${VAR:-x}
      | \$[A-Za-z_][A-Za-z0-9_]*       # $VAR
      | <[^<>]*>                       # <your-token>
      | \{\{.*\}\}                     # {{ .Values.x }}
      | %\([^)]*\)s                    # %(name)s
      | [x*.#-]{3,}                    # xxx, ***, ...
      | (?:your|my|the|insert|put|replace|enter|some)[-_ ].*
      | .*[-_](?:here|placeholder|example)
      | (?:secret|vault|ref|env|file|ssm|arn|k8s|sm)://.*   # references to a secret store
      | arn:aws:.*
      | /[^\s]*|\./[^\s]*|~/[^\s]*     # paths (e.g. /run/secrets/db_password)
      | [~^<>=v]*\d+(?:\.[\dx*]+)+[-+.\w]*  # versions and ranges (^4.0.0)
      | (?:\w+=[^,=]*,)+\w+=[^,=]*       # key=value lists (id=x,src=./secret)
    )$""",
    re.X | re.I,
)

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def marker(fp: str) -> str:
    return f"[REDACTED:plaintext-secret:{fp[:8]}]"


def _last_key(key_path: str) -> str:
    """The last mapping key of a key path (sequence indexes skipped)."""
    for seg in reversed(key_segments(key_path)):
        if isinstance(seg, str):
            return seg
    return key_path


_NGINX_PASS = {"proxy", "fastcgi", "uwsgi", "scgi", "grpc", "memcached"}
_REFERENCE_WORDS = {"existing", "from", "use", "ref", "name", "k8s", "vault"}
_KEY_HINTS = re.compile(r"pass|pw|secret|token|key|credential", re.I)


def secret_key(key_path: str) -> bool:
    """Whether the last key of ``key_path`` names a credential (``db_password``, ``apiKey``...)."""
    if not _KEY_HINTS.search(key_path):
        return False
    words = [w.lower() for w in _WORD_SPLIT.split(_last_key(key_path)) if w]
    if not words:
        return False
    if len(words) >= 2 and words[-2] in _REFERENCE_WORDS:
        return False  # existingSecret, from_secret: the name of a secret, not its value
    if words[-1] == "pass" and len(words) >= 2 and words[-2] in _NGINX_PASS:
        return False  # nginx proxy_pass / fastcgi_pass: an upstream, not a password
    if words[-1] in _SECRET_LAST_WORDS:
        return True
    if len(words) >= 2 and (words[-2], words[-1]) in _SECRET_LAST_PAIRS:
        return True
    return words[-1] in _SECRET_JOINED


_DEFAULTED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_.]*:-?([^}]*)\}$")


def is_placeholder(value: str) -> bool:
    v = value.strip().strip("'\"")
    m = _DEFAULTED.match(v)
    if m:  # ${DB_PASSWORD:-default}, Spring's ${db.password:default}: the default is what is stored
        return is_placeholder(m.group(1))
    if len(v) < 4:
        return True
    if v.lower() in _PLACEHOLDER_WORDS:
        return True
    if " " in v and len(v.split()) > 3:  # prose, not a credential
        return True
    return bool(_PLACEHOLDER_RE.match(v))


# A literal each pattern's matches must contain: the regex runs only when one is present.
_PREFILTER: list[tuple[str, ...]] = [
    ("PRIVATE KEY",), ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA"), ("k_live_", "k_test_"),
    ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), ("github_pat_",), ("xox",), ("AIza",), ("eyJ",),
]


def _scan_text(text: str) -> list[tuple[str, str, int]]:
    """(kind, secret, offset) for pattern matches in free text."""
    found = []
    for (kind, pattern), needles in zip(PATTERNS, _PREFILTER):
        if any(n in text for n in needles):
            for m in pattern.finditer(text):
                found.append((kind, m.group(0), m.start()))
    if "://" not in text or "@" not in text:
        return found
    for m in _URL_PASSWORD.finditer(text):
        pw = m.group(1)
        if not is_placeholder(pw):
            found.append(("a password in a URL", pw, m.start(1)))
    return found


# key = value lines inside free text (Markdown code blocks, Dockerfile ENV, templates)
_TEXT_ASSIGN = re.compile(
    r"""(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)["']?[ \t]*(?:=|:)[ \t]*(?P<q>["']?)(?P<value>[^\s"'#,;{}]+)(?P=q)"""
)


def _strong(value: str) -> bool:
    """A value unlike an ordinary word: scrubbed wherever it appears, not only where assigned."""
    if len(value) >= 12:
        return True
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value),
                   any(c.isdigit() for c in value), any(not c.isalnum() for c in value)))
    return classes >= 2


_ASSIGN_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*[=:]\s*(.+?)\s*$")


def redact(parsed: ParsedFile, text: str, *, structured: bool) -> ParsedFile:
    """Replace secrets in ``parsed`` (records, sections, documents) in place; add problems.

    ``text`` is the file's full text; ``structured`` says whether records carry the file's values
    (then key-name rules run on records; otherwise on ``key = value`` lines of the text).

    Pattern matches and strong values are scrubbed wherever they appear. A weak value (an ordinary
    word such as ``wordpress`` under ``MYSQL_PASSWORD``) is scrubbed only where it is assigned —
    its own lines and its own record — so links and names that share the word stay readable.
    """
    # value -> [kind, fp, line, key, lines-or-None (None: everywhere)]
    secrets: dict[str, list] = {}
    scrub_only: set[str] = set()

    def add(value: str, kind: str, line: int | None, key: str | None, everywhere: bool) -> None:
        value = value.strip()
        if not value:
            return
        if value not in secrets:
            secrets[value] = [kind, fingerprint(value), line, key, None if everywhere else set()]
        info = secrets[value]
        if everywhere:
            info[4] = None
        if info[4] is not None and line is not None:
            info[4].add(line)

    def line_of(offset: int) -> int:
        return text.count("\n", 0, offset) + 1

    # 1. patterns anywhere in the text
    for kind, value, offset in _scan_text(text):
        add(value, kind, line_of(offset), None, kind != "a password in a URL" or _strong(value))

    # 2. credential-named keys (and KEY=value items, as in compose `environment:` lists)
    if structured:
        names = {rec.key_path[:-5]: rec.value for rec in parsed.records
                 if rec.key_path.endswith(".name") and isinstance(rec.value, str)}
        for rec in parsed.records:
            v = rec.value
            if isinstance(v, int) and not isinstance(v, bool) and v >= 100_000 and secret_key(rec.key_path):
                add(str(v), "a credential", rec.line, rec.key_path, False)  # a numeric PIN or password
                continue
            if not isinstance(v, str) or not v:
                continue
            if secret_key(rec.key_path):
                if not is_placeholder(v):
                    add(v, "a credential", rec.line, rec.key_path, _strong(v))
            elif rec.key_path.endswith(".value") and secret_key(str(names.get(rec.key_path[:-6], ""))):
                # Kubernetes env: {name: DB_PASSWORD, value: ...}
                if not is_placeholder(v):
                    add(v, "a credential", rec.line, f"{rec.key_path} ({names[rec.key_path[:-6]]})", _strong(v))
            elif "=" in v or ":" in v:
                m = _ASSIGN_ITEM.match(v)
                if m and secret_key(m.group(1)) and not is_placeholder(m.group(2)):
                    add(m.group(2).strip("'\""), "a credential", rec.line, f"{rec.key_path}", _strong(m.group(2)))
    # key = value lines of the text itself: every file, structured too, so a file that failed to
    # parse, or a value written with escapes or quotes, is still caught in the text we store.
    lines_found = {info[2] for info in secrets.values()}
    for m in _TEXT_ASSIGN.finditer(text):
        if text[max(0, m.start() - 2):m.start()].endswith(("${", "{", "$")):
            continue  # the NAME inside ${NAME:-default}: a reference, not an assignment
        if secret_key(m.group("key")) and not is_placeholder(m.group("value")):
            line = line_of(m.start("value"))
            value = m.group("value")
            if value in secrets:
                continue
            if line in lines_found:  # the same secret, written differently (escapes): scrub, report once
                scrub_only.add(value)
            add(value, "a credential", line, m.group("key"), _strong(value))

    if not secrets:
        return parsed

    # longest first, so a value containing another is replaced whole
    ordered = sorted(secrets.items(), key=lambda kv: -len(kv[0]))
    everywhere = [(value, marker(info[1])) for value, info in ordered if info[4] is None]
    local = [(value, marker(info[1]), info[4]) for value, info in ordered if info[4] is not None]

    def scrub(s: str, line: int | None = None, secret_keyed: bool = False) -> str:
        for value, mark in everywhere:
            if value in s:
                s = s.replace(value, mark)
        for value, mark, lines in local:
            if value in s and (secret_keyed or (line is not None and line in lines)):
                s = s.replace(value, mark)
        return s

    # records: a matching record's line and key path become the finding's location
    for rec in parsed.records:
        if everywhere and any(value in rec.key_path for value, _ in everywhere):
            rec.key_path = scrub(rec.key_path)  # a token used as a mapping key
        if isinstance(rec.value, int) and not isinstance(rec.value, bool) and str(rec.value) in secrets:
            rec.value = marker(secrets[str(rec.value)][1])
            continue
        if isinstance(rec.value, str):
            new = scrub(rec.value, rec.line, secret_key(rec.key_path))
            if new != rec.value:
                for value, info in secrets.items():
                    if value in rec.value and info[3] is None:
                        info[2], info[3] = rec.line, rec.key_path
                rec.value = new
    # section texts, line by line; also multi-line private-key blocks whose indentation differs
    block = PATTERNS[0][1]
    for sec in parsed.sections:
        sec.key_path = scrub(sec.key_path) if everywhere else sec.key_path
        t = block.sub(lambda m: marker(fingerprint(m.group(0))), sec.text) if "PRIVATE KEY" in sec.text else sec.text
        if local:
            t = "\n".join(scrub(ln, sec.line_start + i) for i, ln in enumerate(t.split("\n")))
        else:
            t = scrub(t)
        sec.text = _scrub_escaped(t, everywhere)
    numeric = {int(v): marker(info[1]) for v, info in secrets.items() if v.isdigit()}
    parsed.documents = [_scrub_data(d, scrub, numeric) for d in parsed.documents]

    for value, (kind, fp, line, key, _) in secrets.items():
        if value in scrub_only:
            continue
        where = f" under '{key}'" if key else ""
        parsed.problems.append(Problem(
            "plaintext-secret", "error",
            f"{kind} is stored in plain text{where} (fingerprint {fp}); move it to a secret store "
            f"and reference it, e.g. ${{{_env_name(key)}}}",
            line=line, target=key, fingerprint=fp,
        ))
    return parsed


def _env_name(key: str | None) -> str:
    if not key:
        return "SECRET_NAME"
    return re.sub(r"[^A-Za-z0-9]+", "_", _last_key(key)).upper().strip("_") or "SECRET_NAME"


def _scrub_escaped(text: str, replacements: list[tuple[str, str]]) -> str:
    import json

    for value, mark in replacements:
        esc = json.dumps(value)[1:-1]
        if esc != value and esc in text:
            text = text.replace(esc, mark)
    return text


def _scrub_data(data: Any, scrub, numeric: dict[int, str] | None = None) -> Any:
    """Scrub strings in a parsed tree (keys too); a weak secret only under a credential-named key,
    in a ``KEY=value`` item or in a ``{name: DB_PASSWORD, value: ...}`` pair."""
    if isinstance(data, str):
        return scrub(data)
    numeric = numeric or {}
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            named = secret_key(str(node.get("name", ""))) if isinstance(node.get("name"), str) else False
            for k in list(node):
                v = node[k]
                new_k = scrub(k) if isinstance(k, str) else k
                keyed = secret_key(str(k)) or (named and k == "value")
                if isinstance(v, str):
                    v = scrub(v, None, keyed or _item_keyed(v))
                elif isinstance(v, int) and not isinstance(v, bool) and keyed and v in numeric:
                    v = numeric[v]
                elif isinstance(v, (dict, list)):
                    stack.append(v)
                if new_k != k:
                    del node[k]
                node[new_k] = v
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, str):
                    node[i] = scrub(v, None, _item_keyed(v))
                elif isinstance(v, (dict, list)):
                    stack.append(v)
    return data


def _item_keyed(v: str) -> bool:
    m = _ASSIGN_ITEM.match(v) if ("=" in v or ":" in v) else None
    return bool(m and secret_key(m.group(1)))
