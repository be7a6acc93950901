"""The load run's parts: locust users (``locustfile``, ``live``) and their support (``plan``).

Driven by ``python -m bench.load_knee``, which runs locust as a library in its own process.
"""

# Locust patches the standard library for gevent when imported, and that must happen before
# anything imports ssl or sockets (else: RecursionError in ssl), so it comes first here.
import locust  # noqa: F401
