"""Fixtures for the search index: the hash embedder, a searchable KB over a tiny tree."""

from __future__ import annotations

from pathlib import Path

import pytest

PAYMENTS_PROD = """\
# Production overlay
server:
  public_url: https://payments.example

payments:
  capture_mode: manual
  retry:
    max_attempts: 3

fraud:
  enabled: true
  review_threshold: 0.85
  block_threshold: 0.97
  review_queue: fraud-review
"""

TINY_TREE: dict[str, str] = {
    "services/payments/config/production.yaml": PAYMENTS_PROD,
    "services/payments/.env.example": "APP_ENV=development\nDATABASE_URL=postgres://localhost:5432/payments\nLOG_LEVEL=info\n",
    "services/orders/config/base.json": (
        '{\n  "service": {\n    "name": "orders",\n    "port": 8082\n  },\n'
        '  "database": {\n    "pool_size": 10,\n    "maxConnections": 40\n  }\n}\n'
    ),
    "services/orders/settings.toml": '[queue]\nname = "orders"\nvisibility_timeout = 30\n\n[retry]\nmax_attempts = 5\n',
    "docs/runbooks/fraud-review.md": (
        "# Fraud review runbook\n\nHeld payments land in the review queue.\n\n"
        "## Service level\n\nEvery held payment is decided within 4 hours.\n"
    ),
    "deploy/compose.yml": (
        "services:\n  payments:\n    image: acme/payments:1.4\n    environment:\n"
        "      DATABASE_URL: ${DATABASE_URL}\n  orders:\n    image: acme/orders:2.0\n"
    ),
}


@pytest.fixture
def hash_embedder():
    """The deterministic fake embedder (dimension 64)."""
    from kb.embed import HashEmbedder

    return HashEmbedder(dim=64)


@pytest.fixture
def hash_settings(tmp_path: Path):
    """Settings for a KB in a temporary folder, embedding with the hash embedder."""
    from kb.settings import Settings

    return Settings(db=tmp_path / "kb", model="hash", workers=1)


@pytest.fixture
def tiny_tree(make_tree) -> Path:
    return make_tree(TINY_TREE)


@pytest.fixture
def tiny_kb(tiny_tree: Path, tmp_path: Path):
    """A KnowledgeBase over :data:`TINY_TREE`, built with the hash embedder."""
    from kb import KnowledgeBase

    kb = KnowledgeBase.build(tiny_tree, db=tmp_path / "kb", model="hash", workers=1)
    yield kb
    kb.close()
