"""gunicorn's side of the service: the worker that serves it and the server's own log."""
