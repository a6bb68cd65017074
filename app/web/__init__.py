"""What the routes share about HTTP: problems (RFC 9457), body reading, API keys, webhook
signatures, rate limits, Idempotency-Key, the send's admission, logs and response headers;
the app's settings (app_settings) and the state of the current request (request_context).

It may use the adapters (app.vonage, app.store) and the domain, never a route.
"""
