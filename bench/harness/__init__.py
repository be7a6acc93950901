"""What every bench shares, one module a role, so that no bench writes its own copy.

- :mod:`~bench.harness.client`: HTTP calls with a timeout, and the bearer header;
- :mod:`~bench.harness.seeding`: users, their tokens, goals and workouts to measure against;
- :mod:`~bench.harness.stats`: percentiles;
- :mod:`~bench.harness.readers`: another user's reads timed while a bench does something heavy;
- :mod:`~bench.harness.cpu`: CPU seconds per process group and for the whole machine;
- :mod:`~bench.harness.results`: the hardening suites' result files and table.

Free ports come from ``devstack.stack.free_port``/``free_ports`` (the one port helper), and the
usual replica layouts from ``tests.support.stack`` (``make_replicas``, ``gateway_tier``).
"""
