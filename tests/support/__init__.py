"""What the tests share: the stack and its client, probes, file makers and stand-ins.

Importable as ``tests.support`` from the tests and from ``bench/``; the fixtures built on it
are the pytest plugin ``tests.support.fixtures``.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTS = ("fitness", "user_service", "activity_service", "gateway", "etl")
"""The system's packages (docs/architecture.md), as the project tests walk them."""
