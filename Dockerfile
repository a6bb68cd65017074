# The Python the tests run on (CI and `make test`); tests/test_dockerfile.py keeps them equal.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000 \
    STATE_PATH=/var/lib/sms-service/sms-state.db

WORKDIR /srv

# Dependencies first, so a code change does not reinstall them; only what the hashed lock names.
COPY requirements.txt .
RUN pip install --no-cache-dir --require-hashes -r requirements.txt \
    && useradd --system --uid 10001 --no-create-home sms \
    && mkdir -p /var/lib/sms-service \
    && chown 10001:10001 /var/lib/sms-service
# Opt-outs, idempotency keys and records (STATE_PATH): mount a named volume here to keep them.
VOLUME ["/var/lib/sms-service"]
COPY --chown=root:root app/ app/
COPY --chown=root:root wsgi.py gunicorn.conf.py ./

USER 10001
EXPOSE 8000
# On SIGTERM gunicorn stops taking connections and lets sends in flight finish for up to its
# graceful timeout (2 x VONAGE_TIMEOUT + 10 = 30 s by default). Give the container longer
# before it is killed: `docker stop -t 40`, compose `stop_grace_period: 40s`, Kubernetes
# `terminationGracePeriodSeconds: 40` (compose.example.yaml sets it).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
