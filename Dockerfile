# Gantry's image: web (uvicorn), worker and beat (celery), the one-shot migration and, under the
# compose `sandbox` profile, the AWS emulator. docker-compose.yml says which command each runs.
FROM python:3.11-slim-bookworm

# Production by default: DEBUG must be switched on, never forgotten off.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DEBUG=0
RUN apt-get update \
 && apt-get install -y --no-install-recommends graphviz \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app gantry \
 && install -d -o gantry -g gantry /app

WORKDIR /app
# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install ".[sandbox]"
COPY --chown=gantry:gantry . .

USER gantry
# A throwaway key: collectstatic needs settings, not secrets.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    python manage.py collectstatic --noinput -v0

EXPOSE 8000
CMD ["uvicorn", "gantry.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers", \
     "--timeout-keep-alive", "75", "--timeout-graceful-shutdown", "20"]
