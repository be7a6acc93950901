"""What the deployment tests share: the compose file, our images, and what each of our
processes must be given in production (compose's and the Kubernetes manifests' tests check both
against it)."""

from __future__ import annotations

import yaml

from tests.support import REPO_ROOT

# The images built from our Dockerfile: services and one-shots; the ETL (with its charts).
OUR_IMAGES = {"fitness-goal-tracker:local", "fitness-goal-tracker-etl:local"}
# What each of our processes must be given in production (beyond what every one gets).
EVERY_PROCESS = {"ENV", "LOGSTASH_HOST", "LOGSTASH_PORT"}
NEEDS = {
    "user_service serve": {
        "JWT_SECRET",
        "DATABASE_URL",
        "DATABASE_PASSWORD",
        "STATE_REDIS_URL",
        "STATE_REDIS_PASSWORD",
        "HTTP_PORT",
        "GRPC_PORT",
    },
    "user_service migrate": {"DATABASE_URL", "DATABASE_PASSWORD"},
    "activity_service serve": {
        "JWT_SECRET",
        "MONGO_URL",
        "MONGO_PASSWORD",
        "USER_GRPC_TARGETS",
        "HTTP_PORT",
        "GRPC_PORT",
    },
    "gateway serve": {
        "JWT_SECRET",
        "USER_HTTP_REPLICAS",
        "ACTIVITY_HTTP_REPLICAS",
        "USER_GRPC_TARGETS",
        "ACTIVITY_GRPC_TARGETS",
        "CACHE_REDIS_URLS",
        "CACHE_REDIS_PASSWORD",
        "STATE_REDIS_URL",
        "STATE_REDIS_PASSWORD",
        "TRUSTED_PROXY_HOPS",
        "HTTP_PORT",
    },
    "etl schedule": {
        "DATABASE_URL",
        "DATABASE_PASSWORD",
        "MONGO_URL",
        "MONGO_PASSWORD",
        "WAREHOUSE_URL",
        "WAREHOUSE_PASSWORD",
        "ETL_SCHEDULE",
    },
}


def compose_file() -> dict:
    """Return docker-compose.yml, parsed."""
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
