"""kb: a semantic knowledge base over configuration trees.

The Python API for notebooks and scripts::

    from kb import KnowledgeBase
    kb = KnowledgeBase.open(".kb")
    kb.files()            # DataFrame
    kb.search("fraud review threshold")
"""

from kb.errors import KBError
from kb.knowledge import KnowledgeBase
from kb.settings import Settings
from kb.types import DriftGroup, DuplicateGroup, FileInfo, Finding, Hit, RunSummary

__all__ = [
    "KnowledgeBase",
    "Settings",
    "KBError",
    "FileInfo",
    "Finding",
    "Hit",
    "DuplicateGroup",
    "DriftGroup",
    "RunSummary",
]
__version__ = "0.1.0"
