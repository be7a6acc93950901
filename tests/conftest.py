"""The suite's fixtures come from its plugin, ``tests.support.fixtures``.

Helpers are imported from ``tests.support``.

Tests live in rooms by part of the system (``services/``, ``gateway/``, ``live/``, ``sagas/``,
``history/``, ``warehouse/``, ``security/``, ``deployment/``, ``project/``), with ``unit/``
(in process, seconds) collected first.
"""

pytest_plugins = ["tests.support.fixtures"]
