"""The run: every extractor over one catalogue, in a fixed order, each given what it needs."""

from __future__ import annotations

from collections.abc import Callable

from kb.catalogue import Catalogue
from kb.graph.refs.compose import extract_compose
from kb.graph.refs.corpus import Corpus
from kb.graph.refs.helm import extract_helm_values
from kb.graph.refs.kubernetes import extract_kubernetes
from kb.graph.refs.markdown import extract_markdown_links
from kb.graph.refs.model import Reference
from kb.graph.refs.schema_index import SchemaIndex
from kb.graph.refs.values import extract_schema_modelines, extract_values
from kb.graph.refs.variables import check_variables
from kb.settings import Settings

__all__ = ["ReferenceExtractor", "extract_references", "Progress"]

Progress = Callable[[str, int, int], None]


class ReferenceExtractor:
    """Runs every extractor over a catalogue; keeps the corpus view and schema index, which the
    schema and orphan rules reuse."""

    STEPS = 7

    def __init__(self, catalogue: Catalogue, settings: Settings, progress: Progress | None = None) -> None:
        self.catalogue = catalogue
        self.settings = settings
        self.progress = progress
        self.corpus = Corpus(catalogue, settings)
        self.schema_index = SchemaIndex(self.corpus)
        self.compose_files: list[str] = []  # the compose files :meth:`run` found, for the orphan rule

    def run(self) -> list[Reference]:
        """Every reference in the catalogued tree, resolved; in the same order on every run."""
        cat, corpus, index = self.catalogue, self.corpus, self.schema_index
        refs: list[Reference] = []
        done = 0

        def step(found: list[Reference]) -> None:
            nonlocal done
            refs.extend(found)
            done += 1
            if self.progress:
                self.progress("refs", done, self.STEPS)

        compose = extract_compose(cat, corpus)
        self.compose_files = sorted(compose.files)
        step(compose.references)
        step(extract_values(cat, corpus, index, skip=compose.files.keys()))
        step(extract_schema_modelines(cat, corpus, index))
        step(extract_markdown_links(cat, corpus))
        step(extract_kubernetes(cat))
        step(extract_helm_values(cat, corpus))
        step(
            check_variables(
                cat,
                corpus,
                known_env=list(self.settings.known_env or []),
                schema_files=index.schema_files,
                compose_files=compose.files,
                compose_env_files=compose.env_files,
            )
        )
        return refs


def extract_references(catalogue: Catalogue, settings: Settings, progress: Progress | None = None) -> list[Reference]:
    """Every reference in the catalogued tree, resolved."""
    return ReferenceExtractor(catalogue, settings, progress).run()
