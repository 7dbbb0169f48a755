FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends graphviz \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --upgrade pip && pip install ".[sandbox]"
COPY . .
RUN DEBUG=0 SECRET_KEY=build-only-not-secret python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 gantry && chown -R gantry /app
USER gantry
EXPOSE 8000
CMD ["uvicorn", "gantry.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
