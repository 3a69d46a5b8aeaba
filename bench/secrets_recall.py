"""Benchmark: kb's secret detection against detect-secrets (Yelp) and gitleaks' rule set.

    pip install detect-secrets==1.5.0        # a reference scanner; not a kb dependency
    python bench/secrets_recall.py [--show] [--by-class]

The planted set is ``bench/secrets_planted.json`` (183 shapes, written before issue 22's fix):
credential formats, credential-named keys in every format and quoting style, and the classes of
issues 11, 22 and 24 (weak values in connection strings and JAAS lines, key=value inside URLs, URL
passwords with an empty user or ``/``/``@`` inside, command-line password flags, netrc/.pgpass/XML/
Markdown-table credentials, key material by key name, values once excused as prose, versions or
paths), and the negatives: placeholders, references, GitHub ``permissions:`` scopes and other
key=enum words, prose after ``KEY:``. Each shape is written to its own file in a temporary tree.

* **kb** parses and redacts each file as an ingest does; a shape counts as found when a
  ``plaintext-secret`` problem is reported, and as *kept* when its planted value (or any 8-character
  run of it) is still in the records, sections or documents after redaction.
* **detect-secrets** runs ``scan_file`` with its default plugins.
* **gitleaks rules**: ``bench/data/gitleaks.toml`` (gitleaks' own default rule set, MIT licence,
  copied unchanged with its commit named in its header) applied from Python: keywords, the rule's
  regex (Go's mid-pattern ``(?i)`` rewritten to a scoped group), its secret group, its entropy
  threshold, the global and per-rule allowlists (regexes and stopwords). Not the gitleaks binary.

Prints recall on the positives and false alarms on the negatives for all three, and what each misses.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import tomllib
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PLANTED = HERE / "secrets_planted.json"
GITLEAKS = HERE / "data" / "gitleaks.toml"


def load_shapes() -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = json.loads(PLANTED.read_text())["shapes"]
    return shapes


# -- kb -------------------------------------------------------------------------------------------


def _runs(secret: str) -> list[str]:
    s = "".join(secret.split())
    return [s] if len(s) < 8 else [s[i : i + 8] for i in range(len(s) - 7)]


def kb_scan(path: Path, secret: str | None) -> tuple[bool, bool]:
    """(reported, kept in clear) for one file, parsed and redacted as an ingest does."""
    from kb.ingest.parsers.base import Limits, format_for, parse_text
    from kb.ingest.pipeline import STRUCTURED_FORMATS
    from kb.ingest.secrets import redact

    name = path.name
    fmt = "dockerfile" if name.endswith(".Dockerfile") else format_for(PurePosixPath(name))
    text = path.read_text()
    parsed = redact(parse_text(fmt, text, PurePosixPath(name), Limits()), text, structured=fmt in STRUCTURED_FORMATS)
    found = any(p.rule == "plaintext-secret" for p in parsed.problems)
    kept = False
    if secret:
        blob = repr((parsed.records, [s.text for s in parsed.sections], parsed.documents))
        flat = "".join(blob.split())
        elsewhere = "".join(text.replace(secret, "").split())  # runs the file also holds apart from the secret
        kept = secret in blob or any(r in flat and r not in elsewhere for r in _runs(secret))
    return found, kept


# -- detect-secrets -------------------------------------------------------------------------------


def ds_found(path: Path) -> bool:
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings

    with default_settings():
        return any(True for _ in scan_file(str(path)))


# -- gitleaks' rule set, from Python --------------------------------------------------------------


def _go_regex(pattern: str) -> str:
    """Go RE2 to Python ``re``: ``\\z`` is ``\\Z``; a ``(?i)`` after the start applies to the rest
    of its group, written as a scoped ``(?i:...)``."""
    pattern = pattern.replace(r"\z", r"\Z")
    while True:
        i = pattern.find("(?i)", 1)
        if i < 0:
            return pattern
        depth, j = 0, i + 4
        while j < len(pattern):
            c = pattern[j]
            if c == "\\":
                j += 2
                continue
            if c == "[":  # skip a character class
                j += 1
                if j < len(pattern) and pattern[j] == "]":
                    j += 1
                while j < len(pattern) and pattern[j] != "]":
                    j += 2 if pattern[j] == "\\" else 1
            elif c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            j += 1
        pattern = pattern[:i] + "(?i:" + pattern[i + 4 : j] + ")" + pattern[j:]


def _entropy(s: str) -> float:
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


class Gitleaks:
    def __init__(self, path: Path = GITLEAKS) -> None:
        cfg = tomllib.loads(path.read_text())
        allow = cfg.get("allowlist", {})
        self.global_regexes = [re.compile(_go_regex(r)) for r in allow.get("regexes", [])]
        self.global_stop = [w.lower() for w in allow.get("stopwords", [])]
        self.global_paths = [re.compile(_go_regex(r)) for r in allow.get("paths", [])]
        self.rules = []
        for r in cfg["rules"]:
            if "regex" not in r:
                continue
            lists = [
                (
                    [re.compile(_go_regex(x)) for x in a.get("regexes", [])],
                    [w.lower() for w in a.get("stopwords", [])],
                    a.get("regexTarget", "secret"),
                )
                for a in r.get("allowlists", [])
            ]
            self.rules.append(
                (
                    r["id"],
                    re.compile(_go_regex(r["regex"])),
                    [k.lower() for k in r.get("keywords", [])],
                    r.get("secretGroup", 0),
                    r.get("entropy", 0.0),
                    lists,
                )
            )

    def scan(self, path: str, text: str) -> list[tuple[str, str]]:
        if any(p.search(path) for p in self.global_paths):
            return []
        lower = text.lower()
        out = []
        for rid, rx, keywords, group, entropy, lists in self.rules:
            if keywords and not any(k in lower for k in keywords):
                continue
            for m in rx.finditer(text):
                if group:
                    secret = m.group(group) or ""
                else:
                    secret = next((g for g in m.groups() if g), m.group(0))
                if entropy and _entropy(secret) < entropy:
                    continue
                low = secret.lower()
                if any(g.search(secret) for g in self.global_regexes) or any(w in low for w in self.global_stop):
                    continue
                line_a = text.rfind("\n", 0, m.start()) + 1
                line_b = text.find("\n", m.end())
                line = text[line_a : line_b if line_b >= 0 else len(text)]
                targets = {"secret": secret, "match": m.group(0), "line": line}
                if any(
                    any(x.search(targets.get(target, secret)) for x in regexes) or any(w in low for w in stop)
                    for regexes, stop, target in lists
                ):
                    continue
                out.append((rid, secret))
        return out


# -- the run --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--show", action="store_true", help="list every shape with the three verdicts")
    ap.add_argument("--by-class", action="store_true", help="recall and false alarms per class of shape")
    ap.add_argument("--json", action="store_true", help="the figures as JSON")
    args = ap.parse_args()
    try:
        import detect_secrets  # noqa: F401
    except ImportError:
        raise SystemExit("pip install detect-secrets==1.5.0 (the reference scanner) first") from None
    gl = Gitleaks()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for shape in load_shapes():
            p = Path(d) / shape["name"]
            p.write_text(shape["text"])
            found, kept = kb_scan(p, shape.get("secret"))
            rows.append(
                {
                    "name": shape["name"],
                    "class": shape["class"],
                    "positive": shape["expect"] == "secret",
                    "kb": found,
                    "kept": kept,
                    "detect-secrets": ds_found(p),
                    "gitleaks": bool(gl.scan(shape["name"], shape["text"])),
                }
            )
    pos = [r for r in rows if r["positive"]]
    neg = [r for r in rows if not r["positive"]]
    tools = ("kb", "detect-secrets", "gitleaks")
    figures = {
        "shapes": len(rows),
        "positives": len(pos),
        "negatives": len(neg),
        "recall": {t: sum(r[t] for r in pos) for t in tools},
        "false_alarms": {t: sum(r[t] for r in neg) for t in tools},
        "kb_kept_in_clear": sum(r["kept"] for r in pos if "kept" in r),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    if args.show:
        for r in rows:
            verdicts = " ".join(f"{t}={'yes' if r[t] else 'no '}" for t in tools)
            print(f"{'pos' if r['positive'] else 'neg'} {r['class']:12} {r['name']:34} {verdicts} kept={r['kept']}")
    if args.by_class:
        by: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            by[r["class"]].append(r)
        print(f"\n{'class':14} {'pos':>4} {'neg':>4}  " + "  ".join(f"{t:>16}" for t in tools))
        for cls, rs in by.items():
            p = [r for r in rs if r["positive"]]
            n = [r for r in rs if not r["positive"]]
            cells = "  ".join(f"{sum(r[t] for r in p):>4}/{len(p):<3} fa {sum(r[t] for r in n):>2}" for t in tools)
            print(f"{cls:14} {len(p):>4} {len(n):>4}  {cells}")
    print(f"\n{len(rows)} shapes: {len(pos)} positives, {len(neg)} negatives ({PLANTED.name})")
    print("recall        " + "   ".join(f"{t} {figures['recall'][t]}/{len(pos)}" for t in tools))
    print("false alarms  " + "   ".join(f"{t} {figures['false_alarms'][t]}/{len(neg)}" for t in tools))
    print(f"kb: reported but kept in clear: {[r['name'] for r in pos if r['kept'] and r['kb']]}")
    print(f"kb: missed and kept in clear: {[r['name'] for r in pos if r['kept'] and not r['kb']]}")
    for t in ("detect-secrets", "gitleaks"):
        print(f"found by {t}, missed by kb: {[r['name'] for r in pos if r[t] and not r['kb']]}")
    for t in tools:
        print(f"{t} false alarms: {[r['name'] for r in neg if r[t]]}")


if __name__ == "__main__":
    main()
