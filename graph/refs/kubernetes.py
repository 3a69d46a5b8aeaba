"""Kubernetes: ``configMapRef``, ``secretRef``, ``configMapKeyRef``, ``secretKeyRef`` and volume
``configMap``/``secret`` names, looked up among the ConfigMaps, Secrets and kustomize generators
in the tree, then among the commands its scripts and documents give to create one (``kubectl create
secret generic NAME``, ``oc secrets new NAME``): made at run time, not missing. The rest are warnings:
the cluster may provide them."""

from __future__ import annotations

import re

from kb.catalogue import Catalogue
from kb.graph.refs.model import Reference, ReferenceSink

__all__ = ["extract_kubernetes"]

_K8S_REF = re.compile(
    r"(?:^|\.)(?P<obj>configMapRef|secretRef|configMapKeyRef|secretKeyRef|configMap|secret)\.(?P<field>name|secretName)$"
)


# kubectl/oc create secret generic|tls|docker-registry NAME, create configmap NAME, oc secrets new NAME
_CREATED = re.compile(
    r"\bcreate[ \t]+(?P<what>secret[ \t]+(?:generic|tls|docker-registry)|configmap|cm)"
    r"(?:[ \t]+(?:-n|--namespace)[= \t]+\S+)?[ \t]+(?P<name>[a-z0-9][a-z0-9.-]{0,252})(?![\w.$-])"
    r"|\bsecrets[ \t]+new[ \t]+(?P<oc>[a-z0-9][a-z0-9.-]{0,252})(?![\w.$-])"
)


def _created_by_commands(catalogue: Catalogue) -> dict[tuple[str, str], str]:
    """(kind, name) -> the file whose text creates it with a command (a script, a README)."""
    out: dict[tuple[str, str], str] = {}
    rows = catalogue.query(
        """SELECT path, text FROM chunks
           WHERE text ILIKE '%create secret%' OR text ILIKE '%create configmap%' OR text ILIKE '%create cm %'
              OR text ILIKE '%secrets new%'
           ORDER BY path, ordinal"""
    )
    for path, text in rows:
        for m in _CREATED.finditer(text):
            if m.group("oc"):
                out.setdefault(("Secret", m.group("oc")), path)
            else:
                kind = "Secret" if m.group("what").startswith("secret") else "ConfigMap"
                out.setdefault((kind, m.group("name")), path)
    return out


def extract_kubernetes(catalogue: Catalogue) -> list[Reference]:
    """Workload references to ConfigMaps and Secrets by name (``configMapRef``, ``secretKeyRef``, ...).

    When several files define one name, the first by path is the one a reference resolves to."""
    out = ReferenceSink()
    objs = catalogue.query(
        """SELECT k.path, k.doc, k.value, n.value FROM records k
           JOIN records n ON n.path = k.path AND n.doc = k.doc AND n.key_path = 'metadata.name'
           WHERE k.key_path = 'kind' AND k.value IN ('ConfigMap', 'Secret', 'SealedSecret', 'ExternalSecret')
           ORDER BY k.path, k.doc"""
    )
    defined: dict[tuple[str, str], str] = {}
    for path, _doc, kind, name in objs:
        k = "ConfigMap" if kind == "ConfigMap" else "Secret"
        defined.setdefault((k, name), path)
    gens = catalogue.query(
        """SELECT path, key_path, value FROM records
           WHERE regexp_matches(key_path, '^(configMapGenerator|secretGenerator)\\[\\d+\\]\\.name$')
           ORDER BY path, line"""
    )
    for path, kp, name in gens:
        defined.setdefault(("ConfigMap" if kp.startswith("configMap") else "Secret", name), path)
    rows = catalogue.query(
        """SELECT r.path, r.doc, r.key_path, r.value, r.line FROM records r
           WHERE r.value_type = 'str'
             AND regexp_matches(r.key_path, '(configMapRef|secretRef|configMapKeyRef|secretKeyRef|configMap|secret)\\.(name|secretName)$')
             AND (r.path, r.doc) IN (SELECT path, doc FROM records WHERE key_path = 'apiVersion')
           ORDER BY r.path, r.doc, r.line"""
    )
    if not rows:
        return []
    optional = {
        (p, d, kp)
        for p, d, kp, v in catalogue.query(
            """SELECT path, doc, key_path, value FROM records WHERE value = 'true'
           AND (ends_with(key_path, '.optional'))"""
        )
    }
    created: dict[tuple[str, str], str] | None = None  # read when a name is not defined
    for path, doc, kp, name, line in rows:
        m = _K8S_REF.search(kp)
        if not m:
            continue
        obj, field = m.group("obj"), m.group("field")
        if (obj == "secret") != (field == "secretName") and obj in ("secret",):
            continue
        if obj == "configMap" and field != "name":
            continue
        kind = "Secret" if obj.startswith("secret") else "ConfigMap"
        if "{{" in name or "$" in name:
            continue
        parent = kp[: -len(field) - 1]
        ref_kind = "k8s-secret" if kind == "Secret" else "k8s-configmap"
        where = defined.get((kind, name))
        if not where:
            if created is None:
                created = _created_by_commands(catalogue)
            where = created.get((kind, name))
        if where:
            out.add(path, doc, line, kp, ref_kind, name, where, "ok", "warning")
        elif (path, doc, parent + ".optional") in optional:
            out.add(path, doc, line, kp, ref_kind, name, None, "optional", "warning")
        else:
            out.add(
                path, doc, line, kp, ref_kind, name, None, "broken", "warning", f"no {kind} named '{name}' in the tree"
            )
    return out.references
