#!/usr/bin/env python3
"""Generate a large, realistic, deterministic configuration corpus for benchmarks.

    python bench/gen_corpus.py OUT_DIR --files 50000 [--seed 1]

The tree looks like a big company's configuration monorepo::

    teams/<team>/services/<svc>/config/{base,development,staging,production}.<ext>
    teams/<team>/services/<svc>/.env.{example,development,staging,production}
    teams/<team>/services/<svc>/{Dockerfile,README.md,application*.properties,<svc>.conf}
    teams/<team>/deploy/<svc>/{deployment,service,configmap}.yaml
    teams/<team>/features/<svc>-flags.json, teams/<team>/dashboards/<svc>.json
    teams/<team>/docs/<svc>-runbook.md, teams/<team>/legacy/<svc>-base.<other ext>
    shared/{logging,metrics}/*.yaml, shared/schemas/*.schema.json

Formats follow fixed proportions (YAML 40%, JSON 30%, TOML 8%, .env 8%, INI/conf 4%,
properties 3%, Markdown 5%, Dockerfile 2%); files are about 0.5-4 KB. The corpus contains what a
real one does: shared logging/metrics blocks copied into many services, about 3% byte-identical
duplicate files, base configs re-saved in another format under ``legacy/``, sibling environment
files that drift (a key missing, an extra key), references between files (``$schema``,
``extends``, Markdown links, ``env_file``-style paths; about 1% broken) and ``${VARS}`` (defined
in the service's ``.env.*`` files, with defaults, or occasionally undefined).

The counts returned (``broken_references``, ``undefined_variables``, ...) are the planted ones;
copied files carry their references along, so a copy can add a few more of each, as copies do in
real repositories.

The same ``files`` and ``seed`` always give the same bytes. Standard library only, so tests can
import :func:`generate` straight from this file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

__all__ = ["generate", "FORMAT_WEIGHTS"]

FORMAT_WEIGHTS: dict[str, float] = {
    "yaml": 0.40,
    "json": 0.30,
    "toml": 0.08,
    "env": 0.08,
    "ini": 0.04,  # .ini and .conf
    "properties": 0.03,
    "md": 0.05,
    "dockerfile": 0.02,
}

ENVS = ("development", "staging", "production")

DOMAINS = (
    "payments",
    "checkout",
    "identity",
    "search",
    "logistics",
    "growth",
    "platform",
    "data",
    "mobile",
    "messaging",
    "catalog",
    "pricing",
    "risk",
    "support",
    "marketing",
    "billing",
    "fulfilment",
    "loyalty",
    "analytics",
    "content",
    "partners",
    "finance",
    "security",
    "media",
    "reviews",
    "ads",
    "tax",
    "subscriptions",
    "inventory",
    "travel",
)
SQUADS = ("core", "edge", "api", "ops", "infra", "labs", "eu", "us", "apac", "web")
NOUNS = (
    "ledger",
    "invoice",
    "refund",
    "cart",
    "pricing",
    "catalog",
    "review",
    "wishlist",
    "shipping",
    "tax",
    "fx",
    "loyalty",
    "coupon",
    "session",
    "profile",
    "audit",
    "report",
    "export",
    "import",
    "sync",
    "webhook",
    "scheduler",
    "notifier",
    "indexer",
    "recommender",
    "router",
    "quota",
    "billing",
    "subscription",
    "fraud",
    "kyc",
    "payout",
    "settlement",
    "returns",
    "stock",
    "warehouse",
    "label",
    "tracking",
    "email",
    "sms",
    "push",
    "consent",
    "token",
    "directory",
    "media",
    "thumbnail",
    "feed",
    "ranking",
    "banner",
    "campaign",
)
SUFFIXES = ("api", "worker", "service", "consumer", "cron", "gateway", "sync", "adapter")
LANGS = ("python", "go", "java", "node")
HOST_WORDS = ("db", "cache", "mq", "es", "api", "auth", "kafka", "redis", "pg", "vault")
TOPIC_WORDS = ("created", "updated", "deleted", "paid", "shipped", "refunded", "expired", "failed")
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "JPY", "SEK", "CHF")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")
LEVELS = ("debug", "info", "warn", "error")
MIME = ("application/json", "text/html", "text/csv", "application/pdf", "image/png", "application/xml")
IMAGES = (
    "nginx:1.25",
    "redis:7.2-alpine",
    "postgres:16.2-alpine",
    "python:3.12-slim",
    "golang:1.22-alpine",
    "eclipse-temurin:21-jre",
    "node:20-bookworm-slim",
)
CRONS = ("*/5 * * * *", "0 * * * *", "0 */6 * * *", "30 2 * * *", "0 9 * * 1-5", "15 3 * * 0")
DURATIONS = ("100ms", "250ms", "500ms", "1s", "2s", "5s", "10s", "30s", "1m", "5m", "15m", "1h", "24h")


# ---------------------------------------------------------------------------------------------
# Serialisers for a small data model: dict[str, scalar | list[scalar] | dict[...]]
# ---------------------------------------------------------------------------------------------

_YAML_PLAIN_BAD = set(":#{}[],&*!|>'\"%@`")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _yaml_scalar(v) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v)
    if (
        not s
        or s[0] in "-?.0123456789 "
        or s[-1] == " "
        or s.lower() in _YAML_WORDS
        or any(c in _YAML_PLAIN_BAD for c in s)
        or "\n" in s
    ):
        return json.dumps(s)
    return s


def to_yaml(data: dict, indent: int = 0) -> str:
    out: list[str] = []
    pad = " " * indent
    for k, v in data.items():
        if isinstance(v, dict):
            if v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 2)}")
            else:
                out.append(f"{pad}{k}: {{}}\n")
        elif isinstance(v, list):
            if not v:
                out.append(f"{pad}{k}: []\n")
            elif all(not isinstance(x, (dict, list)) for x in v) and len(v) <= 4:
                out.append(f"{pad}{k}: [{', '.join(_yaml_scalar(x) for x in v)}]\n")
            else:
                out.append(f"{pad}{k}:\n")
                for x in v:
                    if isinstance(x, dict):
                        inner = to_yaml(x, indent + 4)
                        out.append(f"{pad}  - {inner.lstrip()}")
                    else:
                        out.append(f"{pad}  - {_yaml_scalar(x)}\n")
        else:
            out.append(f"{pad}{k}: {_yaml_scalar(v)}\n")
    return "".join(out)


def to_json(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"


def _toml_value(v) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v))


def to_toml(data: dict) -> str:
    head: list[str] = []
    tables: list[str] = []

    def table(name: str, d: dict) -> None:
        scalars = [(k, v) for k, v in d.items() if not isinstance(v, dict)]
        subs = [(k, v) for k, v in d.items() if isinstance(v, dict)]
        lines = [f"\n[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in scalars if not _has_dict_list(v)]
        tables.append("\n".join(lines) + "\n")
        for k, v in subs:
            table(f"{name}.{k}", v)

    for k, v in data.items():
        if isinstance(v, dict):
            table(k, v)
        elif not _has_dict_list(v):
            head.append(f"{k} = {_toml_value(v)}\n")
    return "".join(head) + "".join(tables)


def _has_dict_list(v) -> bool:
    return isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v)


def _flat(data: dict, prefix: str = ""):
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            yield from _flat(v, key)
        elif isinstance(v, list):
            if not _has_dict_list(v):
                yield key, ",".join(_plain(x) for x in v)
        else:
            yield key, _plain(v)


def _plain(v) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return ""
    return str(v)


def to_ini(data: dict) -> str:
    out: list[str] = []
    for section, body in data.items():
        if not isinstance(body, dict):
            continue
        out.append(f"\n[{section}]\n")
        for k, v in _flat(body):
            out.append(f"{k} = {v}\n")
    return "".join(out).lstrip("\n")


def to_properties(data: dict) -> str:
    return "".join(f"{k}={v}\n" for k, v in _flat(data))


SERIALISERS = {"yaml": to_yaml, "json": to_json, "toml": to_toml, "ini": to_ini, "properties": to_properties}
EXT = {"yaml": "yaml", "json": "json", "toml": "toml", "ini": "ini", "properties": "properties"}


# ---------------------------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------------------------


class _Gen:
    def __init__(self, rng: random.Random):
        self.r = rng
        # Shared blocks: a handful of logging/metrics policies copied into many services.
        self.logging_blocks = [self._logging_block(i) for i in range(4)]
        self.metrics_blocks = [self._metrics_block(i) for i in range(3)]

    # -- shared blocks
    def _logging_block(self, i: int) -> dict:
        r = self.r
        return {
            "level": LEVELS[i % 3],
            "format": "json" if i % 2 == 0 else "logfmt",
            "output": "stdout",
            "include_caller": i % 2 == 0,
            "timestamp_format": "rfc3339" if i < 2 else "unix_ms",
            "sampling": {"initial": 100 * (i + 1), "thereafter": 100},
            "redact_fields": ["password", "authorization", r.choice(("card_number", "iban", "ssn"))],
        }

    def _metrics_block(self, i: int) -> dict:
        return {
            "enabled": True,
            "path": ("/metrics", "/actuator/prometheus", "/internal/metrics")[i],
            "port": 9100 + i,
            "histogram_buckets": [0.005, 0.01, 0.05, 0.1, 0.5, 1.0][: 4 + i],
            "labels": {"cluster": "${CLUSTER_NAME:-local}", "team_label": "team"},
        }

    # -- small random values
    def dur(self) -> str:
        return self.r.choice(DURATIONS)

    def host(self, svc: str, env: str) -> str:
        return f"{svc}-{self.r.choice(HOST_WORDS)}.{env}.internal"

    def section(self, svc: str, env: str, name: str) -> dict:
        r = self.r
        if name == "server":
            return {
                "host": "0.0.0.0",
                "port": r.randrange(8000, 9000),
                "read_timeout": self.dur(),
                "write_timeout": self.dur(),
                "shutdown_grace_period": self.dur(),
                "max_body_bytes": r.choice((65536, 1048576, 10485760)),
            }
        if name == "database":
            return {
                "driver": r.choice(("postgres", "mysql")),
                "host": self.host(svc, env),
                "port": r.choice((5432, 3306)),
                "name": svc.replace("-", "_"),
                "user": svc.replace("-", "_"),
                "password": f"${{{_var(svc, 'DB_PASSWORD')}}}",
                "pool": {"min_idle": r.randrange(1, 5), "max_open": r.randrange(5, 100), "max_lifetime": self.dur()},
                "statement_timeout": self.dur(),
            }
        if name == "cache":
            return {
                "backend": "redis",
                "url": f"redis://{self.host(svc, env)}:6379/{r.randrange(16)}",
                "default_ttl": self.dur(),
                "max_entries": r.randrange(1000, 100000),
            }
        if name == "queue":
            topics = {f"{w}": f"{svc}.{w}.v{r.randrange(1, 4)}" for w in r.sample(TOPIC_WORDS, 3)}
            return {
                "broker": r.choice(("kafka", "rabbitmq", "sqs")),
                "topics": topics,
                "consumer_group": svc,
                "max_in_flight": r.choice((8, 16, 32, 64)),
                "publish_timeout": self.dur(),
            }
        if name == "retry":
            return {
                "max_attempts": r.randrange(1, 8),
                "initial_backoff": self.dur(),
                "max_backoff": self.dur(),
                "multiplier": r.choice((1.5, 2.0, 3.0)),
                "retry_on": r.sample(["timeout", "connection_reset", "http_502", "http_503", "deadlock"], 3),
            }
        if name == "circuit_breaker":
            return {
                "failure_ratio": r.choice((0.25, 0.5, 0.6)),
                "min_requests": r.randrange(10, 100),
                "open_for": self.dur(),
                "half_open_requests": r.randrange(1, 10),
            }
        if name == "jobs":
            return {
                f"{n}_{r.choice(('sync', 'cleanup', 'report', 'reindex'))}": {
                    "schedule": r.choice(CRONS),
                    "timeout": self.dur(),
                    "enabled": r.random() < 0.8,
                }
                for n in r.sample(NOUNS, 2)
            }
        if name == "storage":
            return {
                "bucket": f"s3://acme-{svc}-{env}/",
                "region": r.choice(REGIONS),
                "upload_mime_types": r.sample(MIME, 3),
                "max_object_bytes": r.choice((5242880, 52428800)),
                "path_glob": "uploads/**/*.bin",
                "created_after": f"2024/0{r.randrange(1, 10)}/1{r.randrange(10)}",
            }
        if name == "auth":
            return {
                "issuer": f"https://auth.{env}.acme.example",
                "audience": f"{svc}-api",
                "jwks_url": f"${{JWKS_URL:-https://auth.{env}.acme.example/.well-known/jwks.json}}",
                "clock_skew": self.dur(),
                "api_key": "<your-token>",
            }
        if name == "cors":
            return {
                "allowed_origins": [f"https://{env}.acme.example", "http://localhost:3000"],
                "allowed_methods": ["GET", "POST", "PUT", "DELETE"],
                "max_age": r.choice((60, 600, 3600)),
            }
        if name == "rate_limit":
            return {
                "requests_per_second": r.randrange(5, 500),
                "burst": r.randrange(10, 1000),
                "key": r.choice(("client_id", "client_ip", "user_id")),
            }
        if name == "clients":
            return {
                n: {
                    "base_url": f"${{{_var(n, 'BASE_URL')}:-http://{n}:8080}}",
                    "timeout": self.dur(),
                    "retries": r.randrange(0, 4),
                }
                for n in r.sample(NOUNS, 2)
            }
        if name == "features":
            return {f"{n}_enabled": r.random() < 0.5 for n in r.sample(NOUNS, 4)}
        if name == "currency":
            return {
                "default": r.choice(CURRENCIES),
                "supported": r.sample(CURRENCIES, 4),
                "rounding": r.choice(("half_even", "half_up")),
            }
        if name == "tracing":
            return {
                "exporter": "otlp",
                "endpoint": "${OTEL_EXPORTER_OTLP_ENDPOINT:-http://otel-collector:4317}",
                "sample_ratio": r.choice((0.01, 0.05, 0.1, 1.0)),
            }
        raise KeyError(name)

    SECTIONS = (
        "server",
        "database",
        "cache",
        "queue",
        "retry",
        "circuit_breaker",
        "jobs",
        "storage",
        "auth",
        "cors",
        "rate_limit",
        "clients",
        "features",
        "currency",
        "tracing",
    )
    OVERLAY = ("database", "cache", "retry", "rate_limit", "features", "tracing", "clients", "cors")

    def base_config(self, svc: str, team: str, n_sections: int) -> dict:
        r = self.r
        d: dict = {
            "service": {
                "name": svc,
                "team": team,
                "contact": f"{team}-oncall@acme.example",
                "tier": r.choice(("critical", "standard", "best-effort")),
            }
        }
        for name in r.sample(self.SECTIONS, n_sections):
            d[name] = self.section(svc, "default", name)
        if r.random() < 0.6:
            d["logging"] = _copy(r.choice(self.logging_blocks))
        else:
            d["logging"] = {"level": r.choice(LEVELS), "format": "json"}
        if r.random() < 0.5:
            d["metrics"] = _copy(r.choice(self.metrics_blocks))
        return d

    def overlay_sections(self, n: int) -> list[str]:
        return self.r.sample(self.OVERLAY, n)

    def overlay(self, svc: str, env: str, sections: list[str]) -> dict:
        d: dict = {}
        for name in sections:
            d[name] = self.section(svc, env, name)
        d["logging"] = {"level": "debug" if env == "development" else self.r.choice(("info", "warn"))}
        return d


def _copy(d):
    return json.loads(json.dumps(d))


def _var(svc: str, name: str) -> str:
    return (svc.replace("-", "_") + "_" + name).upper()


def _env_file(rng: random.Random, svc: str, env: str, keys: list[str]) -> str:
    lines = [
        f"# Environment for {svc} ({env}).",
        "# Secrets stay empty outside development: Vault injects them at deploy time.",
        "# Keep the keys of .env.example, .env.development, .env.staging and .env.production in sync.",
        "",
    ]
    for k in keys:
        if k.endswith(("PASSWORD", "TOKEN", "SECRET")):
            v = "changeme" if env in ("development", "example") else ""
        elif k.endswith("_URL"):
            v = f"http://{svc}-{rng.choice(HOST_WORDS)}.{env}.internal:{rng.randrange(1024, 9999)}"
        elif k.endswith("_PORT"):
            v = str(rng.randrange(1024, 65535))
        elif k == "APP_ENV":
            v = env
        else:
            v = rng.choice(("true", "false", "info", "30s", "5", "eu-west-1", "json"))
        lines.append(f"{k}={v}")
    return "\n".join(lines) + "\n"


def _dockerfile(rng: random.Random, svc: str, lang: str, port: int) -> str:
    return (
        f"# syntax=docker/dockerfile:1.6\n# Image for {svc}; built by CI on every merge to main.\n"
        f"# Pushed as ghcr.io/acme/{svc}:<calendar version>, e.g. 2024.0{rng.randrange(1, 10)}.{rng.randrange(1, 9)}\n"
        + _dockerfile_body(rng, svc, lang, port)
        + f'LABEL org.opencontainers.image.source="https://github.com/acme/{svc}" \\\n'
        f'      org.opencontainers.image.vendor="Acme" \\\n'
        f'      org.opencontainers.image.title="{svc}"\n'
    )


def _dockerfile_body(rng: random.Random, svc: str, lang: str, port: int) -> str:
    if lang == "python":
        return (
            f"ARG PYTHON_VERSION=3.{rng.choice((11, 12))}\n"
            "FROM python:${PYTHON_VERSION}-slim\n"
            "WORKDIR /app\nCOPY requirements.txt .\n"
            "RUN pip install --no-cache-dir -r requirements.txt\n"
            f"COPY src/ ./src/\nCOPY config/ ./config/\nENV CONFIG_DIR=/app/config\n"
            f"EXPOSE {port}\nUSER 10001\n"
            f'CMD ["python", "-m", "{svc.replace("-", "_")}", "--port", "{port}"]\n'
            "# Build: docker build -t ghcr.io/acme/" + svc + ":dev .\n"
            "# Lint: hadolint Dockerfile; tests run in CI for src/**/*.py\n"
        )
    if lang == "go":
        return (
            "ARG GO_VERSION=1.22\nFROM golang:${GO_VERSION}-alpine AS compile\nWORKDIR /src\n"
            "COPY go.mod go.sum ./\nRUN go mod download\nCOPY . .\n"
            f"RUN CGO_ENABLED=0 go build -trimpath -o /out/{svc} ./cmd/{svc}\n\n"
            f"FROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=compile /out/{svc} /{svc}\n"
            f"COPY config/ /etc/{svc}/\nEXPOSE {port}\n"
            f'ENTRYPOINT ["/{svc}", "--config-dir=/etc/{svc}"]\n'
        )
    if lang == "java":
        return (
            "ARG JDK_VERSION=21\nFROM gradle:8.5-jdk${JDK_VERSION} AS compile\nWORKDIR /workspace\n"
            "COPY settings.gradle.kts build.gradle.kts ./\nCOPY src/ src/\n"
            "RUN gradle --no-daemon bootJar\n\nFROM eclipse-temurin:${JDK_VERSION}-jre\n"
            f"WORKDIR /opt/{svc}\nCOPY --from=compile /workspace/build/libs/{svc}.jar app.jar\n"
            f"COPY application.properties ./\nEXPOSE {port}\n"
            f'ENTRYPOINT ["java", "-XX:MaxRAMPercentage=75", "-jar", "/opt/{svc}/app.jar"]\n'
        )
    return (
        "ARG NODE_VERSION=20\nFROM node:${NODE_VERSION}-bookworm-slim\nWORKDIR /usr/src/app\n"
        "COPY package.json package-lock.json ./\nRUN npm ci --omit=dev\nCOPY dist/ ./dist/\n"
        f"COPY config/ ./config/\nENV NODE_ENV=production\nEXPOSE {port}\nUSER node\n"
        'CMD ["node", "dist/server.js"]\n'
    )


def _readme(
    rng: random.Random, svc: str, team: str, fmt: str | None, lang: str, has_env: bool, has_runbook: bool
) -> str:
    para = " ".join(
        rng.sample(
            (
                f"The service is written in {lang} and owned by the {team} team.",
                "It exposes a small HTTP API behind the gateway and publishes domain events.",
                "Configuration is layered: a base file and one overlay per environment, deep-merged at start-up.",
                "Secrets are injected at deploy time by Vault; the repository only holds placeholders.",
                "Dashboards live in Grafana under the team folder; alerts page the team's on-call rotation.",
                "Database migrations are expand/contract so that a rollback never needs a schema change.",
            ),
            4,
        )
    )
    config = ""
    if fmt:
        ext = EXT[fmt]
        envs = "\n".join(f"- [{e}](config/{e}.{ext})" for e in ENVS)
        config = f"## Configuration\n\n- [base](config/base.{ext})\n{envs}\n"
    env_line = "\nEnvironment variables: see [.env.example](.env.example).\n" if has_env else ""
    runbook = f"- Runbook: [{svc}-runbook.md](../../docs/{svc}-runbook.md)\n" if has_runbook else ""
    return (
        f"# {svc}\n\n{para}\n\n{config}{env_line}\n"
        f"## Operations\n\n{runbook}- Deployment: [deployment.yaml](../../deploy/{svc}/deployment.yaml)\n"
        f"- Dashboards: https://grafana.acme.example/d/{svc}\n"
    )


def _runbook(rng: random.Random, svc: str, team: str) -> str:
    steps = rng.sample(
        (
            "Check the error rate on the service dashboard and compare with the last deploy time.",
            "Look for saturated connection pools: `db_pool_in_use / db_pool_max` above 0.9 for five minutes.",
            "Roll back with `helm rollback` if the incident started with a release.",
            "Scale out the deployment if CPU is above 80% and the queue is growing.",
            "Drain the dead-letter topic after fixing the poison message.",
            "Fail over the database only after confirming the primary is really down.",
            "Escalate to the platform team in #platform-oncall if the cluster itself is degraded.",
        ),
        5,
    )
    body = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    return (
        f"# Runbook: {svc}\n\nOwner: {team}. Pager: {team}-primary.\n\n## Symptoms\n\n"
        f"- Alerts `{svc.title().replace('-', '')}HighErrorRate` or `{svc.title().replace('-', '')}Latency`\n"
        f"- Customer reports in #support-escalations\n\n## Steps\n\n{body}\n\n"
        f"Configuration: [base config](../services/{svc}/README.md).\n"
    )


def _k8s(rng: random.Random, svc: str, team: str, port: int, kind: str, has_env: bool) -> str:
    if kind == "deployment":
        env_from = f"          envFrom:\n            - configMapRef:\n                name: {svc}-config\n" + (
            f"            - secretRef:\n                name: {svc}-secrets\n" if has_env else ""
        )
        return (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {svc}\n  labels:\n"
            f"    app.kubernetes.io/name: {svc}\n    team: {team}\nspec:\n  replicas: {rng.randrange(1, 8)}\n"
            f"  selector:\n    matchLabels:\n      app.kubernetes.io/name: {svc}\n  template:\n"
            f"    metadata:\n      labels:\n        app.kubernetes.io/name: {svc}\n"
            f"        app.kubernetes.io/part-of: {team}\n      annotations:\n"
            f'        prometheus.io/scrape: "true"\n        prometheus.io/port: "{port}"\n'
            f"        acme.example/dashboard: https://grafana.acme.example/d/{svc}\n    spec:\n"
            f"      serviceAccountName: {svc}\n      terminationGracePeriodSeconds: {rng.choice((20, 30, 60))}\n"
            f"      securityContext:\n        runAsNonRoot: true\n        runAsUser: {rng.randrange(10000, 20000)}\n"
            f"        fsGroup: {rng.randrange(10000, 20000)}\n"
            f"      containers:\n        - name: {svc}\n"
            f"          imagePullPolicy: IfNotPresent\n"
            f"          env:\n            - name: POD_NAME\n              valueFrom:\n"
            f"                fieldRef:\n                  fieldPath: metadata.name\n"
            f"            - name: LOG_LEVEL\n              valueFrom:\n                configMapKeyRef:\n"
            f"                  name: {svc}-config\n                  key: LOG_LEVEL\n"
            f"          image: ghcr.io/acme/{svc}:2024.{rng.randrange(1, 13):02d}.{rng.randrange(1, 9)}\n"
            f"          ports:\n            - name: http\n              containerPort: {port}\n{env_from}"
            f"          readinessProbe:\n            httpGet:\n              path: /healthz\n"
            f"              port: http\n            periodSeconds: {rng.choice((5, 10, 15))}\n"
            f"          livenessProbe:\n            tcpSocket:\n              port: http\n"
            f"            initialDelaySeconds: {rng.choice((10, 20, 30))}\n"
            f"            failureThreshold: {rng.choice((3, 5))}\n"
            f"          resources:\n            requests:\n              cpu: {rng.choice((100, 250, 500))}m\n"
            f"              memory: {rng.choice((128, 256, 512))}Mi\n            limits:\n"
            f"              memory: {rng.choice((512, 1024, 2048))}Mi\n"
        )
    if kind == "service":
        return (
            f"# ClusterIP service for {svc}; the gateway routes to it by DNS name.\n"
            f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {svc}\n  annotations:\n"
            f"    acme.example/owner: {team}\n    acme.example/tier: {rng.choice(('critical', 'standard'))}\n  labels:\n"
            f"    app.kubernetes.io/name: {svc}\n    team: {team}\nspec:\n  type: ClusterIP\n  selector:\n"
            f"    app.kubernetes.io/name: {svc}\n  ports:\n    - name: http\n      port: {port}\n"
            f"      targetPort: http\n      protocol: TCP\n"
            f"    - name: metrics\n      port: {port + 1000}\n      targetPort: {port + 1000}\n      protocol: TCP\n"
            f"  sessionAffinity: None\n  internalTrafficPolicy: Cluster\n"
            f"# Exposed internally as http://{svc}.{team}.svc.cluster.local:{port}\n"
        )
    pairs = [
        ("APP_ENV", "production"),
        ("LOG_LEVEL", rng.choice(LEVELS)),
        ("CONFIG_PATH", "/app/config/production.yaml"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector.observability:4317"),
        ("OTEL_SERVICE_NAME", svc),
        ("HTTP_TIMEOUT", rng.choice(DURATIONS)),
        ("REGION", rng.choice(REGIONS)),
        ("CACHE_TTL", rng.choice(DURATIONS)),
        ("WORKER_CONCURRENCY", str(rng.randrange(1, 32))),
        ("FEATURE_FLAGS_URL", f"http://flags.platform.svc.cluster.local/teams/{team}/features/{svc}-flags.json"),
        ("ALLOWED_CONTENT_TYPES", ",".join(rng.sample(MIME, 3))),
        (
            "MAINTENANCE_WINDOW",
            f"{rng.choice(('sun', 'sat'))} 0{rng.randrange(1, 6)}:00-0{rng.randrange(6, 10)}:00 UTC",
        ),
        ("DB_POOL_MAX", str(rng.randrange(5, 100))),
        ("RETRY_MAX_ATTEMPTS", str(rng.randrange(1, 8))),
    ]
    data = "\n".join(f'  {k}: "{v}"' for k, v in pairs[: rng.randrange(9, len(pairs) + 1)])
    return (
        f"# Non-secret settings for {svc}; secrets come from the {svc}-secrets Secret (Vault operator).\n"
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {svc}-config\n  labels:\n"
        f"    app.kubernetes.io/name: {svc}\n    team: {team}\ndata:\n{data}\n"
    )


def _flags(rng: random.Random, svc: str, team: str, base_exists: bool, broken: bool) -> dict:
    d: dict = {"$schema": "../../../shared/schemas/feature-flags.schema.json", "name": f"{svc}-flags", "owner": team}
    if base_exists:
        d["extends"] = "./base-flags.json"
    if broken:
        d["config"] = f"teams/{team}/features/{svc}-payment-methods.json"
    d["flags"] = {
        f"{n}_{rng.choice(('v2', 'rollout', 'beta', 'ui'))}": {
            "enabled": rng.random() < 0.6,
            "rollout_percent": rng.choice((0, 5, 10, 25, 50, 100)),
            "segments": rng.sample(["employees", "beta-testers", "eu", "us", "ios", "android"], 2),
            "description": f"Controls the {n} behaviour of {svc}.",
        }
        for n in rng.sample(NOUNS, rng.randrange(4, 12))
    }
    return d


def _dashboard(rng: random.Random, svc: str) -> dict:
    return {
        "title": f"{svc} overview",
        "uid": f"{svc[:20]}-ovw",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": [
            {
                "id": i,
                "type": rng.choice(("timeseries", "stat", "table")),
                "title": t,
                "datasource": "prometheus",
                "targets": [{"expr": f'sum(rate(http_requests_total{{service="{svc}",code=~"{c}"}}[5m]))'}],
                "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
            }
            for i, (t, c) in enumerate(
                rng.sample(
                    [
                        ("Requests", "2.."),
                        ("Errors", "5.."),
                        ("Client errors", "4.."),
                        ("Redirects", "3.."),
                        ("All", ".*"),
                    ],
                    rng.randrange(2, 5),
                )
            )
        ],
    }


def _conf(rng: random.Random, svc: str, port: int) -> str:
    return (
        f"# nginx sidecar for {svc}\nupstream {svc.replace('-', '_')} {{\n    server 127.0.0.1:{port};\n"
        f"    keepalive {rng.choice((16, 32, 64))};\n}}\n\nserver {{\n    listen 8443 ssl;\n"
        f"    server_name {svc}.acme.example;\n    client_max_body_size {rng.choice((1, 8, 32))}m;\n\n"
        f"    location / {{\n        proxy_pass http://{svc.replace('-', '_')};\n"
        f"        proxy_read_timeout {rng.choice((10, 30, 60))}s;\n"
        "        proxy_set_header Host $host;\n        proxy_set_header X-Request-Id $request_id;\n"
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n    }\n\n"
        '    location /healthz {\n        access_log off;\n        return 200 "ok";\n    }\n\n'
        f"    location /static/ {{\n        root /srv/{svc};\n        expires {rng.choice((1, 7, 30))}d;\n"
        "        gzip_types text/css application/javascript application/json;\n    }\n}\n"
    )


# ---------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------


def _dup_key(rel: str, fmt: str) -> str:
    """Files that may be byte-identical copies of each other (same role, same format)."""
    parts = rel.split("/")
    name = parts[-1]
    parent = parts[-2] if len(parts) > 1 else ""
    if parent in ("config", "features", "dashboards", "docs", "legacy", "logging", "metrics"):
        return f"{fmt}:{parent}:{os.path.splitext(name)[1]}"
    if name.startswith(".env"):
        return f"{fmt}:env"
    if name.endswith(".conf"):
        return f"{fmt}:conf"
    return f"{fmt}:{name}"


def _quotas(files: int) -> dict[str, int]:
    q = {f: int(files * w) for f, w in FORMAT_WEIGHTS.items()}
    q["yaml"] += files - sum(q.values())
    return q


def generate(out_dir: Path, files: int, seed: int = 1) -> dict:
    """Write ``files`` files under ``out_dir`` and return counts.

    Deterministic: the same ``files`` and ``seed`` give byte-identical trees. Existing files at the
    same paths are overwritten; nothing else in ``out_dir`` is touched.
    """
    if files < 0:
        raise ValueError("files must be >= 0")
    out_dir = Path(out_dir)
    rng = random.Random(seed)
    g = _Gen(rng)
    quota = _quotas(files)
    by_format = dict.fromkeys(FORMAT_WEIGHTS, 0)
    stats = {
        "exact_duplicates": 0,
        "cross_format_duplicates": 0,
        "drifted_env_files": 0,
        "broken_references": 0,
        "undefined_variables": 0,
        "services": 0,
        "teams": 0,
    }
    made_dirs: set[str] = set()
    written: dict[str, list[str]] = {}  # recent contents by kind of file, for exact duplicates
    total_bytes = 0
    count = 0

    def emit(rel: str, fmt: str, text: str) -> bool:
        nonlocal total_bytes, count
        if quota[fmt] <= 0:
            return False
        pool = written.setdefault(_dup_key(rel, fmt), [])
        if pool and rng.random() < 0.03:
            text = pool[rng.randrange(len(pool))]
            stats["exact_duplicates"] += 1
        else:
            if len(pool) < 64:
                pool.append(text)
            elif rng.random() < 0.1:
                pool[rng.randrange(64)] = text
        quota[fmt] -= 1
        by_format[fmt] += 1
        path = os.path.join(out_dir, rel)
        d = os.path.dirname(path)
        if d not in made_dirs:
            os.makedirs(d, exist_ok=True)
            made_dirs.add(d)
        data = text.encode("utf-8")
        with open(path, "wb") as fh:
            fh.write(data)
        total_bytes += len(data)
        count += 1
        return True

    # Shared files first: the schema every flag file points at, and the shared blocks.
    emit(
        "shared/schemas/feature-flags.schema.json",
        "json",
        to_json(
            {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "title": "Feature flag set",
                "type": "object",
                "required": ["name", "flags"],
                "properties": {
                    "name": {"type": "string"},
                    "owner": {"type": "string"},
                    "extends": {"type": "string"},
                    "config": {"type": "string"},
                    "$schema": {"type": "string"},
                    "flags": {"type": "object", "additionalProperties": {"$ref": "#/definitions/flag"}},
                },
                "definitions": {
                    "flag": {
                        "type": "object",
                        "required": ["enabled"],
                        "properties": {
                            "enabled": {"type": "boolean"},
                            "rollout_percent": {"type": "number", "minimum": 0, "maximum": 100},
                        },
                    }
                },
            }
        ),
    )
    for i, block in enumerate(g.logging_blocks):
        emit(
            f"shared/logging/policy-{i}.yaml",
            "yaml",
            "# Shared logging policy; services copy it.\n" + to_yaml({"logging": block}),
        )
    for i, block in enumerate(g.metrics_blocks):
        emit(f"shared/metrics/policy-{i}.yaml", "yaml", to_yaml({"metrics": block}))

    services_per_team = 12
    svc_index = 0
    team = ""
    team_names: set[str] = set()
    used_in_team: set[str] = set()
    while sum(quota.values()) > 0:
        if svc_index % services_per_team == 0:
            t = svc_index // services_per_team
            team = f"{DOMAINS[t % len(DOMAINS)]}-{SQUADS[(t // len(DOMAINS)) % len(SQUADS)]}"
            if t >= len(DOMAINS) * len(SQUADS):
                team += f"-{t // (len(DOMAINS) * len(SQUADS))}"
            team_names.add(team)
            used_in_team = set()
            base_flags = f"teams/{team}/features/base-flags.json"
            emit(base_flags, "json", to_json(_flags(rng, "base", team, False, False)))
        svc_index += 1
        count_before = count
        while True:
            svc = f"{rng.choice(NOUNS)}-{rng.choice(SUFFIXES)}"
            if svc not in used_in_team:
                break
            if len(used_in_team) > 300:
                svc = f"{svc}-{svc_index}"
                break
        used_in_team.add(svc)
        stats["services"] += 1
        root = f"teams/{team}/services/{svc}"
        lang = rng.choice(LANGS)
        port = rng.randrange(8000, 9000)

        # Config format: YAML mostly; only formats with room for a full set of four files.
        choices = [f for f, w in (("yaml", 5), ("json", 3), ("toml", 2), ("ini", 1)) for _ in range(w) if quota[f] >= 4]
        fmt = rng.choice(choices) if choices else None
        has_env = quota["env"] >= 4 and rng.random() < 0.9

        # Variables used in configs (defined in .env files below, unless drifted away).
        env_keys = [
            "APP_ENV",
            _var(svc, "DB_PASSWORD"),
            f"{svc.replace('-', '_').upper()}_API_TOKEN",
            "KAFKA_BROKERS_URL",
            "METRICS_PORT",
            "FEATURE_CACHE_TTL",
        ]
        env_keys += rng.sample(
            [
                "REDIS_URL",
                "SENTRY_DSN_URL",
                "WORKER_CONCURRENCY",
                "HTTP_PORT",
                "S3_ENDPOINT_URL",
                "WEBHOOK_SECRET",
                "REGION_NAME",
                "LOG_FORMAT",
                "GRPC_PORT",
                "ADMIN_PORT",
                "SEARCH_URL",
                "PAYMENTS_URL",
                "AUTH_URL",
                "SMTP_PASSWORD",
                "FEATURE_FLAGS_URL",
                "CACHE_TTL",
                "BATCH_SIZE",
                "MAX_CONNECTIONS",
                "READ_TIMEOUT",
                "OTEL_SERVICE_NAME",
            ],
            rng.randrange(8, 16),
        )

        if fmt:
            ser = SERIALISERS[fmt]
            ext = EXT[fmt]
            base = g.base_config(svc, team, rng.randrange(4, 9))
            if not has_env and "database" in base:
                base["database"]["password"] = "changeme"
            if rng.random() < 0.01:
                base.setdefault("server", {})["admin_token"] = "${ADMIN_TOKEN_UNDEFINED}"
                stats["undefined_variables"] += 1
            emit(f"{root}/config/base.{ext}", fmt, ser(base))
            sections = g.overlay_sections(rng.randrange(3, 7))
            drift_env = rng.choice(ENVS) if rng.random() < 0.15 else None
            for env in ENVS:
                ov = g.overlay(svc, env, sections)
                if not has_env and "database" in ov:
                    ov["database"]["password"] = "changeme"
                if env == drift_env:
                    victim = rng.choice(sections)
                    keys = list(ov[victim])
                    if len(keys) > 1:
                        del ov[victim][keys[-1]]
                    stats["drifted_env_files"] += 1
                emit(f"{root}/config/{env}.{ext}", fmt, ser(ov))
            # Same data, other format, under legacy/ (a stale copy).
            if rng.random() < 0.05:
                other = "json" if fmt != "json" else "yaml"
                if emit(f"teams/{team}/legacy/{svc}-base.{EXT[other]}", other, SERIALISERS[other](base)):
                    stats["cross_format_duplicates"] += 1

        if has_env:
            drop = rng.choice(ENVS) if rng.random() < 0.12 else None
            for env in ("example",) + ENVS:
                keys = list(env_keys)
                if env == drop:
                    keys.pop(rng.randrange(1, len(keys)))
                    stats["drifted_env_files"] += 1
                emit(f"{root}/.env.{env}", "env", _env_file(rng, svc, env, keys))

        if lang == "java" or rng.random() < 0.08:
            props = {
                "spring": {
                    "application": {"name": svc},
                    "datasource": {
                        "url": f"${{{_var(svc, 'JDBC_URL')}:-jdbc:postgresql://localhost:5432/{svc}}}",
                        "username": svc.replace("-", "_"),
                        "password": f"${{{_var(svc, 'DB_PASSWORD')}:-changeme}}",
                        "hikari": {
                            "maximum-pool-size": rng.randrange(5, 60),
                            "connection-timeout": rng.choice((1000, 3000, 5000)),
                        },
                    },
                    "kafka": {
                        "bootstrap-servers": "${KAFKA_BROKERS_URL:-localhost:9092}",
                        "consumer": {"group-id": svc, "auto-offset-reset": "earliest"},
                    },
                },
                "server": {"port": port, "shutdown": "graceful"},
                "management": {"endpoints": {"web": {"exposure": {"include": "health,info,prometheus"}}}},
                "logging": {"level": {f"com.acme.{svc.replace('-', '')}": rng.choice(("INFO", "WARN"))}},
            }
            emit(f"{root}/application.properties", "properties", to_properties(props))
            props["spring"]["datasource"]["hikari"]["maximum-pool-size"] = rng.randrange(20, 120)
            emit(f"{root}/application-production.properties", "properties", to_properties(props))

        emit(f"{root}/Dockerfile", "dockerfile", _dockerfile(rng, svc, lang, port))
        has_runbook = quota["md"] >= 2 and rng.random() < 0.7
        if has_runbook:
            emit(f"teams/{team}/docs/{svc}-runbook.md", "md", _runbook(rng, svc, team))
        emit(f"{root}/README.md", "md", _readme(rng, svc, team, fmt, lang, has_env, has_runbook))

        for kind in ("deployment", "service", "configmap"):
            emit(f"teams/{team}/deploy/{svc}/{kind}.yaml", "yaml", _k8s(rng, svc, team, port, kind, has_env))

        if rng.random() < 0.5 or quota["ini"] > quota["yaml"] * 0.12:
            if rng.random() < 0.5:
                emit(f"{root}/{svc}.conf", "ini", _conf(rng, svc, port))
            else:
                emit(
                    f"{root}/config/{svc}.ini",
                    "ini",
                    to_ini(
                        {
                            "worker": {
                                "concurrency": rng.randrange(1, 32),
                                "prefetch": rng.randrange(1, 10),
                                "queue": f"{svc}.jobs",
                            },
                            "paths": {"spool_dir": f"/var/spool/{svc}", "log_file": f"/var/log/{svc}/worker.log"},
                            "limits": {
                                "max_task_seconds": rng.randrange(10, 900),
                                "max_memory_mb": rng.choice((256, 512)),
                            },
                            "retry": {
                                "max_attempts": rng.randrange(1, 8),
                                "backoff": rng.choice(DURATIONS),
                                "dead_letter_queue": f"{svc}.dlq",
                            },
                            "schedule": {n: rng.choice(CRONS) for n in rng.sample(NOUNS, 3)},
                            "database": {
                                "dsn": f"${{{_var(svc, 'DB_DSN')}:-postgresql://localhost:5432/{svc}}}",
                                "pool_size": rng.randrange(2, 30),
                                "pool_timeout": rng.choice(DURATIONS),
                            },
                        }
                    ),
                )

        broken = rng.random() < 0.01
        if emit(f"teams/{team}/features/{svc}-flags.json", "json", to_json(_flags(rng, svc, team, True, broken))):
            stats["broken_references"] += int(broken)
        emit(f"teams/{team}/dashboards/{svc}.json", "json", to_json(_dashboard(rng, svc)))
        if quota["json"] > quota["yaml"] * 0.9 and rng.random() < 0.6:
            emit(
                f"{root}/config/openapi-routes.json",
                "json",
                to_json(
                    {
                        "service": svc,
                        "base_path": f"/api/v1/{svc.split('-')[0]}",
                        "routes": [
                            {
                                "path": f"/api/v1/{svc.split('-')[0]}/{n}",
                                "method": rng.choice(("GET", "POST")),
                                "timeout": rng.choice(DURATIONS),
                                "auth": rng.random() < 0.8,
                                "produces": rng.choice(MIME),
                            }
                            for n in rng.sample(NOUNS, rng.randrange(4, 12))
                        ],
                    }
                ),
            )
        if quota["toml"] > 0 and rng.random() < 0.3:
            emit(
                f"{root}/config/worker.toml",
                "toml",
                to_toml(
                    {
                        "worker": {
                            "queues": [f"{svc}.default", f"{svc}.low"],
                            "concurrency": rng.randrange(1, 64),
                            "max_retries": rng.randrange(0, 10),
                            "visibility_timeout": rng.choice(DURATIONS),
                        },
                        "schedule": {
                            n: {
                                "cron": rng.choice(CRONS),
                                "enabled": rng.random() < 0.8,
                                "timeout": rng.choice(DURATIONS),
                                "max_instances": rng.randrange(1, 4),
                            }
                            for n in rng.sample(NOUNS, rng.randrange(3, 7))
                        },
                        "retry": g.section(svc, "default", "retry"),
                        "tracing": g.section(svc, "default", "tracing"),
                    }
                ),
            )

        # Anything left that no service bundle absorbs (rounding) goes into shared notes/configs.
        if count == count_before or all(quota[f] == 0 for f in ("yaml", "json", "md", "dockerfile")):
            leftovers = [f for f in quota if quota[f] > 0]
            for f in leftovers:
                while quota[f] > 0:
                    i = quota[f]
                    rel = {
                        "toml": f"shared/toml/extra-{i}.toml",
                        "ini": f"shared/ini/extra-{i}.ini",
                        "properties": f"shared/properties/extra-{i}.properties",
                        "yaml": f"shared/yaml/extra-{i}.yaml",
                        "json": f"shared/json/extra-{i}.json",
                        "env": f"shared/env/extra-{i}.env",
                        "md": f"shared/notes/extra-{i}.md",
                        "dockerfile": f"shared/docker/extra-{i}.Dockerfile",
                    }[f]
                    data = g.base_config(f"extra-{i}", "platform-core", 5)
                    text = {
                        "toml": to_toml,
                        "ini": to_ini,
                        "properties": to_properties,
                        "yaml": to_yaml,
                        "json": to_json,
                    }.get(f)
                    if text:
                        emit(rel, f, text(data))
                    elif f == "env":
                        emit(rel, f, _env_file(rng, f"extra-{i}", "production", env_keys))
                    elif f == "md":
                        emit(rel, f, _runbook(rng, f"extra-{i}", "platform-core"))
                    else:
                        emit(rel, f, _dockerfile(rng, f"extra-{i}", rng.choice(LANGS), 8080))

    stats["teams"] = len(team_names)
    return {"files": count, "bytes": total_bytes, "by_format": by_format, **stats}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate a synthetic configuration corpus.")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    counts = generate(args.out_dir, args.files, args.seed)
    counts["seconds"] = round(time.perf_counter() - t0, 2)
    json.dump(counts, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
