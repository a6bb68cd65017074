"""The rules of the service, as plain Python: the SMS request, its encoding, phone numbers,
message records, opt-outs, Idempotency-Key claims, and the catalogue of problems the service
answers. Nothing here imports Flask, werkzeug or another app package (the import-linter
contracts in pyproject.toml)."""
