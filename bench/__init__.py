"""Benchmarks and the hardening suites, each run from the repository root as a module.

Every module with a ``main`` is a bench, run as ``.venv/bin/python -m bench.<name>`` (``--help``
lists its options; its docstring says what it measures): ``http_throughput``,
``gateway_overhead``, ``grpc_latency``, ``saga_throughput``, ``activity_store``,
``etl_throughput``, ``live_fanout``, ``login_burst``, ``import_file``, ``import_archive``, and the
hardening suites ``faults``, ``load_knee``, ``api_fuzz``, ``ws_fuzz``, ``security_probe``, whose
table ``python -m bench.results`` writes into docs/hardening.md.

What they share is in :mod:`bench.harness`. The other modules are parts of one bench:
``faults_stack``, ``mixed_load`` and ``mixed_live`` of the fault suite, ``live_clients`` of the
live fan-out, :mod:`bench.load` of the load run.
"""
