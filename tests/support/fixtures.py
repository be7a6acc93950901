"""The pytest plugin of the suite: the shared stack, its clients, and the order tests run in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.stack import LocalStack
from tests.support.client import Api
from tests.support.stack import start_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the in-process unit tests (tests/unit) first: they take seconds and fail fast."""
    items.sort(key=lambda item: "unit" not in item.path.parent.parts[-1:])


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    """Two replicas of each service sharing one data directory, for the whole session."""
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()


@pytest.fixture
def api(stack) -> Api:
    return Api(stack)


@pytest.fixture
def other_api(stack) -> Api:
    """A client of the other replica of each service."""
    return Api(stack, user_index=1, activity_index=1)
