"""Findings as SARIF 2.1.0, for code-scanning UIs (GitHub, GitLab, Azure DevOps)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from kb.graph.rules import RULES
from kb.types import Finding

__all__ = ["to_sarif", "SARIF_SCHEMA"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _fingerprint(f: Finding) -> str:
    """Stable across line moves: (rule, path, target, message), as ``--baseline`` matches."""
    rule, path, target, message = f.key()
    key = "\x1f".join([rule, path, target or "", message])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def to_sarif(
    findings: Iterable[Finding], *, tool_version: str = "0.1.0", root_uri: str | None = None
) -> dict[str, Any]:
    """A SARIF log with one run: every finding is a result, every rule seen a reportingDescriptor."""
    findings = list(findings)
    names = sorted({f.rule for f in findings} | set(RULES))
    index = {n: i for i, n in enumerate(names)}
    rules = []
    for n in names:
        r = RULES.get(n)
        rules.append(
            {
                "id": n,
                "name": "".join(w.capitalize() for w in n.split("-")),
                "shortDescription": {"text": r.summary if r else n},
                "fullDescription": {"text": r.help if r else n},
                "defaultConfiguration": {"level": _LEVEL.get(r.severity if r else "warning", "warning")},
                "help": {"text": r.help if r else "See the finding's message."},
            }
        )
    results = []
    for f in findings:
        region = {"startLine": int(f.line)} if f.line else {}
        loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": f.path, "uriBaseId": "SRCROOT"}}}
        if region:
            loc["physicalLocation"]["region"] = region
        res: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _LEVEL.get(f.severity, "warning"),
            "message": {"text": f.message},
            "locations": [loc],
            "partialFingerprints": {"kbFinding/v1": _fingerprint(f)},
        }
        if f.target:
            res["properties"] = {"target": f.target}
        results.append(res)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "kb", "version": tool_version, "rules": rules}},
        "results": results,
        "columnKind": "unicodeCodePoints",
    }
    if root_uri:
        run["originalUriBaseIds"] = {"SRCROOT": {"uri": root_uri.rstrip("/") + "/"}}
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
