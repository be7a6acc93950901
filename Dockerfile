# Two images, each for linux/amd64 and linux/arm64 (docs/deployment.md, "The image"):
#   docker build -t fitness-goal-tracker .                       # target service (the default)
#   docker build --target etl -t fitness-goal-tracker-etl .      # the ETL: service + its charts
#   docker buildx build --platform linux/amd64,linux/arm64 --target service -t REGISTRY/fitness-goal-tracker .
#   docker run fitness-goal-tracker                                  # user_service
#   docker run fitness-goal-tracker python -m activity_service serve
# The service image has the runtime dependencies of pyproject.toml only: no embedded servers
# (the local extra), no plotting (the reports extra, in the etl image).

# Debian bookworm named in the tag, so the base cannot move to another glibc unnoticed (the test
# resolves wheels for this glibc). Pin the digest too for byte-identical rebuilds (see the docs).
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    FITNESS_DATA_DIR=/var/lib/fitness

RUN useradd --system --no-log-init --uid 10001 --user-group --home-dir /var/lib/fitness fitness \
    && mkdir -p /var/lib/fitness /var/lib/fitness-tls \
    && chown 10001:10001 /var/lib/fitness /var/lib/fitness-tls


# Build stages: the sources and the build stay here; the images take only /opt/venv.
# Wheels only: the slim image has no compiler, and a dependency without a wheel for the platform
# being built must fail the build here, loudly, not start compiling. (Our own package is pure
# Python and is built from the sources; --only-binary concerns what comes from the index.)
FROM base AS venv-service
WORKDIR /src
COPY . .
RUN python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir --only-binary=:all: /src

# The same environment plus the charts' matplotlib: every shared version stays the same.
FROM venv-service AS venv-etl
RUN pip --python /opt/venv/bin/python install --no-cache-dir --only-binary=:all: '/src[reports]'


# The ETL scheduler (docker-compose.yml's etl).
FROM base AS etl
COPY --from=venv-etl /opt/venv /opt/venv
WORKDIR /var/lib/fitness
USER 10001:10001
CMD ["python", "-m", "etl", "schedule"]

# Every other process: services, gateways, migrate, tls-init, elk setup. Last, so the default.
FROM base AS service
COPY --from=venv-service /opt/venv /opt/venv
WORKDIR /var/lib/fitness
USER 10001:10001

# HTTP and gRPC of user_service (5000, 50051) and activity_service (5001, 50052); gateway HTTP 8080.
EXPOSE 5000 50051 5001 50052 8080

CMD ["python", "-m", "user_service", "serve"]
