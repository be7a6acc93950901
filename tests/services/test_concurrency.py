"""Two replicas and many threads writing at once lose nothing, on the real document store too."""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ThreadPoolExecutor

from fitness import mongo
from tests.support.client import Api, minutes_ago

PROCESSES = 2
THREADS = 8
INCREMENTS = 100


def _increment_many(url: str, counter: str, count: int) -> None:
    counters = mongo.connect(url, "race")["counters"]
    increment = mongo.conflict_safe(counters.update_one)

    def bump(_):
        increment({"_id": counter}, mongo.revised({"$inc": {"value": 1}}))

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(bump, range(count)))


def test_it_loses_no_increment_across_processes_and_threads(stack):
    counter = uuid.uuid4().hex
    counters = mongo.connect(stack.mongo_url, "race")["counters"]
    counters.insert_one({"_id": counter, "value": 0})
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=_increment_many, args=(stack.mongo_url, counter, INCREMENTS * THREADS)
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    assert counters.find_one({"_id": counter})["value"] == PROCESSES * THREADS * INCREMENTS


def test_it_keeps_every_workout_written_through_both_replicas(stack, api):
    users = [api.new_user() for _ in range(6)]
    clients = [Api(stack, i % 2, (i + 1) % 2) for i in range(2)]
    rounds = 8

    def train(index: int) -> None:
        user_id, token = users[index % len(users)]
        client = clients[index % 2]
        for _ in range(rounds):
            session = client.start(user_id, token, "rowing")
            client.end(session["session_id"], token)

    for user_id, token in users:
        api.create_goal(
            user_id, token, goal_type="workout_count", target_value=1000, target_date="2099-01-01"
        )
    with ThreadPoolExecutor(len(users)) as pool:
        list(pool.map(train, range(len(users))))

    for user_id, token in users:
        stats = api.get(f"{api.activity_url}/users/{user_id}/statistics", token).json()
        assert stats["total_workouts"] == rounds
        goals = api.get(f"{api.user_url}/users/{user_id}/goals", token).json()["goals"]
        assert goals[0]["current_progress"] == rounds


def test_it_registers_each_name_once_under_a_race(stack):
    clients = [Api(stack, i % 2) for i in range(8)]
    body = {"username": "racer", "email": "racer@example.com", "password": "long-enough"}

    def register(client: Api) -> int:
        return client.post(f"{client.user_url}/users/register", body).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        codes = sorted(pool.map(register, clients))
    assert codes == [201] + [409] * (len(clients) - 1)


def test_documents_updated_by_id_in_bulk_lose_no_increment_under_a_race(stack):
    """``update_each`` sends again the updates that lost a race, and only those."""
    documents = mongo.connect(stack.mongo_url, "race")["many"]
    ids = [uuid.uuid4().hex for _ in range(20)]
    documents.insert_many([{"_id": one, "value": 0} for one in ids])
    rounds = 5 * THREADS

    def bump_all(_):
        mongo.update_each(documents, ids, {"$inc": {"value": 1}})

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(bump_all, range(rounds)))
    found = mongo.find_each(documents, ["no-such-id", *ids])
    assert [doc["_id"] for doc in found] == ids
    assert {doc["value"] for doc in found} == {rounds}
    assert {doc[mongo.REVISION] for doc in found} == {rounds}


def test_one_workout_starts_when_a_user_starts_many_at_once(stack, api):
    """The user's one active-session slot goes to one request, whether it was never taken
    (the first workout) or freed by an ended one; the rest get 409 naming the winner."""
    user_id, token = api.new_user()
    clients = [Api(stack, i % 2) for i in range(8)]

    def start(client: Api):
        body = {"user_id": user_id, "workout_type": "rowing", "start_time": minutes_ago(10)}
        return client.post(f"{client.activity_url}/workouts/start", body, token)

    for _ in range(3):  # the slot made by the race, then taken again once freed (twice)
        with ThreadPoolExecutor(len(clients)) as pool:
            answers = list(pool.map(start, clients))
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [201] + [409] * (len(clients) - 1)
        (winner,) = [a.json()["session_id"] for a in answers if a.status_code == 201]
        refused = [a.json()["error"] for a in answers if a.status_code == 409]
        assert {e["fields"]["active_session_id"] for e in refused} == {winner}
        api.end(winner, token)
