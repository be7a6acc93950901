"""``make secrets``: the deployment's passwords and keys, one per purpose, made once.

Compose mounts each file only into the containers that use it (``secrets:`` in
``docker-compose.yml``), at ``/run/secrets/<name>``; our processes read theirs through
``FITNESS_<SETTING>_FILE``, the stores' images through their own ``*_FILE`` variables or their
start commands. Running this again makes only what is missing: it never changes a password a
running store already holds (rotation is a documented, deliberate step: README, "Secrets").

Besides the passwords it writes what the Redis servers load, derived from them and from the one
table of who may do what (``fitness.redisconn``): the ACL files (SHA-256 digests, no passwords)
and the replication and Sentinel settings.

The directory is 0700; the files are 0644 because compose without Swarm bind-mounts them with
the host's owner and mode, and the stores run as their own users inside their containers.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
from pathlib import Path

from fitness.redisconn import REDIS_ACL, SENTINEL_ACL, STATE_HA_ACL, acl_user

DEFAULT_DIR = Path(__file__).resolve().parent / "secrets"
MASTER_NAME = "state"
# The deployed state servers know the services' users and those of replication and Sentinel.
STATE_SERVER_USERS = {**REDIS_ACL["state"], **STATE_HA_ACL}

# name: what it is for. Each is given only to the services that use it (compose `secrets:`).
PASSWORDS = {
    "jwt_secret": "signs and checks login tokens (gateways, user and activity services)",
    "pg_superuser_password": "PostgreSQL superuser of the user database (Patroni only)",
    "pg_replication_password": "PostgreSQL streaming replication (Patroni only)",
    "pg_app_password": "role fitness: the user service and its migrations",
    "pg_etl_password": "role fitness_etl: reads the user database for the nightly ETL",
    "patroni_restapi_password": "Patroni REST API user patroni: switchover, restart (patronictl)",
    "mongo_root_password": "MongoDB root: mongo-init only, to create the roles below",
    "mongo_activity_password": "MongoDB user activity: readWrite on fitness",
    "mongo_etl_password": "MongoDB user etl: read on fitness",
    "warehouse_password": "the warehouse's owner: the ETL",
    "elastic_password": "Elasticsearch superuser elastic: the setup jobs, people in Kibana",
    "es_logstash_password": "Elasticsearch user fitness_logstash: Logstash adds log events",
    **{
        f"redis_{kind}_{role}_password": f"Redis ACL user {role} on the {kind} servers"
        for kind, users in {**REDIS_ACL, "state": STATE_SERVER_USERS}.items()
        for role in users
    },
}
KEYS = {"mongo_keyfile": 756}  # the replica set members' shared key (MongoDB: 6 to 1024 chars)


def ensure(directory: Path) -> list[str]:
    """Make every missing secret and the Redis files derived from them; return what was made."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    made = [name for name in PASSWORDS if _create(directory / name, _password())]
    made += [name for name, size in KEYS.items() if _create(directory / name, _key(size))]
    derived = redis_files(directory)
    for name, text in derived.items():
        _write(directory / name, text)
    return made


def redis_files(directory: Path) -> dict[str, str]:
    """Return {file: text} of what the Redis servers and Sentinels load (derived, rewritten)."""

    def password(kind: str, role: str) -> str:
        return (directory / f"redis_{kind}_{role}_password").read_text().strip()

    def acl(kind: str, users: dict[str, str]) -> str:
        lines = [acl_user(role, rules, password(kind, role)) for role, rules in users.items()]
        return "\n".join(["user default off", *lines]) + "\n"

    sentinel = password("state", "sentinel")
    return {
        "redis_cache.acl": acl("cache", REDIS_ACL["cache"]),
        "redis_state.acl": acl("state", STATE_SERVER_USERS),
        # Appended to each state server's configuration at start (either may be a replica).
        "redis_state_auth.conf": (
            "aclfile /run/secrets/redis_state_acl\n"
            "masteruser replica\n"
            f"masterauth {password('state', 'replica')}\n"
        ),
        # Appended to each Sentinel's configuration at start: who may ask it, how it logs in.
        "sentinel_auth.conf": acl("state", SENTINEL_ACL)
        + f"sentinel auth-user {MASTER_NAME} sentinel\n"
        + f"sentinel auth-pass {MASTER_NAME} {sentinel}\n"
        + "sentinel sentinel-user sentinel\n"
        + f"sentinel sentinel-pass {sentinel}\n",
    }


def _password() -> str:
    return secrets.token_urlsafe(32)


def _key(size: int) -> str:
    return base64.b64encode(secrets.token_bytes(size * 3 // 4)).decode()


def _create(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it exists; True if it was made."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    return True


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o644)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.make_secrets", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR)
    directory = parser.parse_args().directory
    made = ensure(directory)
    print(f"{directory}: made {', '.join(made) if made else 'nothing (all there)'}")


if __name__ == "__main__":
    main()
