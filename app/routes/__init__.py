"""The HTTP routes: one blueprint per resource, each a thin view over the packages below.

Only the app factory (app/__init__.py) imports a route, and no route imports another: what
two routes share lives in app.web or below (the import-linter contracts in pyproject.toml).
"""
