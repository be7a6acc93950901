# One image for every service; docker-compose.yml picks each container's command.
#   docker build -t fitness-goal-tracker .
#   docker run fitness-goal-tracker                               # user_service (default)
#   docker run fitness-goal-tracker python -m activity_service serve
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FITNESS_DATA_DIR=/var/lib/fitness

RUN useradd --system --no-log-init --uid 10001 --user-group --home-dir /var/lib/fitness fitness \
    && mkdir -p /var/lib/fitness /var/lib/fitness-tls \
    && chown 10001:10001 /var/lib/fitness /var/lib/fitness-tls

# Every dependency is pinned in pyproject.toml and ships as a wheel: no compiler, no apt.
# The sources are installed into site-packages and then removed.
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . \
    && rm -rf /src

WORKDIR /var/lib/fitness
USER 10001:10001

# HTTP and gRPC of user_service (5000, 50051) and activity_service (5001, 50052); gateway HTTP 8080.
EXPOSE 5000 50051 5001 50052 8080

CMD ["python", "-m", "user_service", "serve"]
