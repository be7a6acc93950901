"""Users, tokens, goals and workouts for a bench to measure against, made one way.

Users register over HTTP, at a user replica or through a gateway (both take it). Their token is
a real login, or, where a bench needs hundreds of users, one minted with the stack's own secret:
a login costs an argon2 hash (~0.1 s of one core here). Goals are written over gRPC as a
gateway's saga writes them, because a bench stack may have no gateway.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from bench.harness.client import bearer, post_json
from devstack.stack import LocalStack
from fitness import auth, mtls
from fitness.rpc import ServiceClient
from fitness.v1 import user_pb2, user_pb2_grpc
from fitness.workouts import GOAL_TYPES

PASSWORD = "bench-password-1"
TOKEN_TTL_SECONDS = 6 * 3600  # longer than any bench runs
REGISTER_TIMEOUT_SECONDS = 60.0  # a stack that has just started hashes slowly
REGISTER_ATTEMPTS = 5
REGISTER_CONCURRENCY = 8
GRPC_TIMEOUT_SECONDS = 10.0
SERVICES = ("user_service", "activity_service")
SEED_WORKOUTS = ("running", "cycling", "yoga")


@dataclass(frozen=True)
class Account:
    """A user a bench registered: who it is, and a token to act as it."""

    user_id: str
    email: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        """Return the header that authenticates a request as this user."""
        return bearer(self.token)


def register(base_url: str, password: str = PASSWORD, **fields: Any) -> tuple[str, str]:
    """Register a new user at ``base_url``; return its id and e-mail.

    Tried a few times: a service still starting, or busy hashing, may refuse one meanwhile.
    """
    name = "b" + uuid.uuid4().hex[:12]
    body = {"username": name, "email": f"{name}@example.com", "password": password, **fields}
    for _attempt in range(REGISTER_ATTEMPTS):
        answer = requests.post(
            f"{base_url}/users/register", json=body, timeout=REGISTER_TIMEOUT_SECONDS
        )
        if answer.status_code == 201:
            return answer.json()["user_id"], body["email"]
        time.sleep(0.5)
    raise RuntimeError(f"could not register a user: {answer.status_code} {answer.text}")


def login(base_url: str, email: str, password: str = PASSWORD) -> str:
    """Log in at ``base_url`` and return the token."""
    return post_json(f"{base_url}/users/login", {"email": email, "password": password})["token"]


def new_account(base_url: str, password: str = PASSWORD, **fields: Any) -> Account:
    """Register a new user at ``base_url`` and log in as it."""
    user_id, email = register(base_url, password, **fields)
    return Account(user_id, email, login(base_url, email, password))


def new_accounts(base_url: str, count: int, secret: str = "") -> list[Account]:
    """Register ``count`` users a few at a time; log each in, or mint its token from ``secret``."""

    def one(_: int) -> Account:
        if not secret:
            return new_account(base_url)
        user_id, email = register(base_url)
        return Account(user_id, email, token_for(user_id, secret))

    with ThreadPoolExecutor(REGISTER_CONCURRENCY) as pool:
        return list(pool.map(one, range(count)))


def jwt_secret(stack: LocalStack) -> str:
    """Return the secret the stack's processes sign and check tokens with."""
    return auth.resolve_secret({"DATA_DIR": str(stack.data_dir)})


def token_for(user_id: str, secret: str) -> str:
    """Return a token for ``user_id`` signed with the stack's ``secret``, as a login gives one."""
    return auth.issue_token(user_id, secret, TOKEN_TTL_SECONDS)


def seed_user(
    stack: LocalStack, workout_types: tuple[str, ...] = SEED_WORKOUTS
) -> tuple[Account, list[str]]:
    """Register and log in a user with a goal of each type and an ended workout of each of
    ``workout_types``, on the stack's first replicas; return the user and its goal ids."""
    user_url, activity_url = (stack.replicas_of(s)[0].url for s in SERVICES)
    account = new_account(user_url, weight_kg=70.0)
    goal_ids = seed_goals(stack, account.user_id)
    seed_workouts(activity_url, account, workout_types)
    return account, goal_ids


def seed_goals(stack: LocalStack, user_id: str) -> list[str]:
    """Give the user a goal of each type the way a gateway's saga does: over gRPC, as the
    gateway; return their ids in the order made.

    Only a gateway takes goal writes from clients, and a bench stack may have none; the
    activity service's copy of the goals is not needed by what the benches read.
    """
    settings = {"DATA_DIR": str(stack.data_dir), "TLS_DIR": stack.env().get("FITNESS_TLS_DIR")}
    targets = [f"127.0.0.1:{r.grpc_port}" for r in stack.replicas_of("user_service")]
    users = ServiceClient(
        targets,
        user_pb2_grpc.UserServiceStub,
        GRPC_TIMEOUT_SECONDS,
        mtls.identity(settings, "gateway"),
        "user_service",
    )
    target_date = time.strftime("%Y-12-31", time.gmtime())
    goal_ids = [str(uuid.uuid4()) for _ in GOAL_TYPES]
    try:
        for goal_type, goal_id in zip(GOAL_TYPES, goal_ids, strict=True):
            step = user_pb2.StepRef(saga_id=f"bench-seed-{user_id}", step=goal_type)
            request = user_pb2.CreateGoalRequest(
                user_id=user_id,
                goal_id=goal_id,
                goal_type=goal_type,
                target_value=1000,
                target_date=target_date,
                step=step,
            )
            users.call("CreateGoal", request)
    finally:
        users.close()
    return goal_ids


def seed_workouts(activity_url: str, account: Account, workout_types: tuple[str, ...]) -> None:
    """Start and at once end a workout of each type, counted (see ``counting_start``)."""
    for workout_type in workout_types:
        start = counting_start()
        body = {"user_id": account.user_id, "workout_type": workout_type, "start_time": start}
        session = post_json(f"{activity_url}/workouts/start", body, account.token)
        post_json(f"{activity_url}/workouts/{session['session_id']}/end", {}, account.token)


def counting_start(minutes_ago: float = 10) -> str:
    """Return a ``start_time`` for a workout the bench ends at once and wants counted.

    A workout shorter than the service's minimum (``MIN_WORKOUT_MINUTES``) ends "discarded"
    and is neither reported nor added to totals: ended at once, it would skip the work the
    benches measure.
    """
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).isoformat()
