"""The naive baseline: Flask plus the Vonage SDK used as its README shows, nothing else.

Every send signs a fresh JWT with the PEM text the SDK keeps (the key is parsed each
time); no validation, no API keys, no limits, no request log. Served by gunicorn as
`bench.naive_app:create_app()` with the service's gunicorn.conf.py, so only the app differs.
"""

from __future__ import annotations

import os

from flask import Flask, request
from vonage import Auth, HttpClientOptions, Vonage
from vonage_messages import Sms


def create_app() -> Flask:
    """Build the app with one module-wide client, as the SDK's README does."""
    client = Vonage(
        Auth(
            application_id=os.environ["VONAGE_APPLICATION_ID"],
            private_key=os.environ["VONAGE_APPLICATION_PRIVATE_KEY_PATH"],
        ),
        HttpClientOptions(api_host=os.environ["VONAGE_API_HOST"]),
    )
    sender = os.environ["VONAGE_NUMBER"].lstrip("+")
    app = Flask(__name__)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/send-sms")
    def send_sms() -> dict:
        body = request.get_json()
        sms = Sms(to=body["to"].lstrip("+"), from_=sender, text=body["text"])
        return {"message_uuid": client.messages.send(sms).message_uuid}

    return app
