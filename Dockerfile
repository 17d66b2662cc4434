# The CDS Hooks service in a container: `docker build -t fhir-module .` (compose.yaml adds PostgreSQL).
#
# It listens on 0.0.0.0:8000, which `fhir-module serve` allows only with trusted clients configured:
# give FHIR_MODULE_TRUSTED_CLIENTS (a JSON file, see deploy/trusted-clients.example.json), or the
# service refuses to start. Every setting is an environment variable (README, "Configuration").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package is built from (.dockerignore lets nothing else in); the postgres extra
# brings the PostgreSQL driver that compose.yaml's FHIR_MODULE_DATABASE_URL needs.
WORKDIR /usr/src/fhir-module
COPY pyproject.toml README.md ./
COPY fhir_module ./fhir_module
RUN pip install '.[postgres]' && rm -rf /usr/src/fhir-module

# Run as a user of its own; its home holds the SQLite database when no PostgreSQL is configured.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/fhir-module fhir-module
USER fhir-module
WORKDIR /var/lib/fhir-module
ENV FHIR_MODULE_DATABASE_URL=sqlite:////var/lib/fhir-module/fhir_module_feedback.sqlite3

EXPOSE 8000
# Readiness, not liveness: /readyz is 503 while the database cannot be reached (open without a JWT).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["fhir-module", "serve", "--host", "0.0.0.0", "--port", "8000"]
