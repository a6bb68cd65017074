"""App code uses only the public surface of the Vonage SDK.

A tripwire over app/**/*.py, read as syntax trees (so strings and comments do not count):
- no attribute named `http_client` or `_session`, on any object;
- no `_private` attribute (nor getattr with a "_..." literal) on a value that comes from a
  `vonage*` package: a name imported from one, whatever is called, indexed or read from such
  a name, a parameter or variable annotated with such a type, and `self.x` once x holds one;
- in our subclasses of SDK classes, no `self._name` that the SDK's classes use themselves:
  that would read or overwrite its internals. Our own private names are fine.
It follows names one module at a time; it is a tripwire, not a proof.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
BANNED_ATTRIBUTES = {"http_client", "_session"}


def is_sdk_module(name: str | None) -> bool:
    return bool(name) and name.split(".")[0].startswith("vonage")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass
class Module:
    """What one module binds to SDK objects."""

    sdk_names: dict[str, object] = field(default_factory=dict)  # local name -> SDK object
    subclasses: dict[str, set[str]] = field(default_factory=dict)  # our class -> SDK's names


def sdk_imports(tree: ast.Module) -> dict[str, object]:
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_sdk_module(alias.name):
                    local = alias.asname or alias.name.split(".")[0]
                    names[local] = importlib.import_module(local if alias.asname else alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and is_sdk_module(node.module):
            module = importlib.import_module(node.module)
            for alias in node.names:
                names[alias.asname or alias.name] = getattr(module, alias.name)
    return names


def sdk_private_names(base: type) -> set[str]:
    """Every private name the SDK's classes behind `base` define or assign on self."""
    names = set()
    for cls in base.__mro__:
        if not is_sdk_module(cls.__module__):
            continue
        names |= {name for name in vars(cls) if is_private(name)}
        source = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        names |= {
            node.attr
            for node in ast.walk(source)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and is_private(node.attr)
        }
    return names


class Checker:
    """Find every reach into the SDK in one module's tree."""

    def __init__(self, tree: ast.Module, sdk_types: dict[str, set[str]]):
        self.tree = tree
        self.sdk = sdk_imports(tree)
        # Our subclasses of SDK classes, here or imported from another app module.
        self.subclasses = dict(sdk_types)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = [self.sdk.get(b.id) for b in node.bases if isinstance(b, ast.Name)]
                sdk_bases = [b for b in bases if isinstance(b, type)]
                if sdk_bases:
                    self.subclasses[node.name] = set().union(*map(sdk_private_names, sdk_bases))
        self.problems: list[str] = []

    def tainted(self, node: ast.AST | None, names: set[str], self_attrs: set[str]) -> bool:
        if isinstance(node, ast.Name):
            return node.id in names or node.id in self.sdk or node.id in self.subclasses
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                return node.attr in self_attrs
            return self.tainted(node.value, names, self_attrs)
        if isinstance(node, (ast.Call, ast.Subscript)):
            inner = node.func if isinstance(node, ast.Call) else node.value
            return self.tainted(inner, names, self_attrs)
        if isinstance(node, ast.BinOp):  # annotations such as `Vonage | None`
            return self.tainted(node.left, names, self_attrs) or self.tainted(
                node.right, names, self_attrs
            )
        return False

    def run(self) -> list[str]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute) and node.attr in BANNED_ATTRIBUTES:
                self.report(node, f".{node.attr}")
        classes = [n for n in ast.walk(self.tree) if isinstance(n, ast.ClassDef)]
        in_classes = {id(f) for c in classes for f in ast.walk(c)}
        for cls in classes:
            self.check_scope(cls, self.subclasses.get(cls.name))
        top = [n for n in ast.walk(self.tree) if id(n) not in in_classes]
        self.check_nodes(top, set(), set(), None)
        return self.problems

    def check_scope(self, cls: ast.ClassDef, sdk_own: set[str] | None) -> None:
        nodes = list(ast.walk(cls))
        self_attrs = {
            n.target.id
            for n in cls.body
            if isinstance(n, ast.AnnAssign)
            and isinstance(n.target, ast.Name)
            and self.tainted(n.annotation, set(), set())
        }
        self.check_nodes(nodes, set(), self_attrs, sdk_own)

    def check_nodes(self, nodes, names: set[str], self_attrs: set[str], sdk_own) -> None:
        for _ in range(3):  # follow assignments until nothing new is learnt
            for node in nodes:
                self.learn(node, names, self_attrs)
        for node in nodes:
            if isinstance(node, ast.Attribute) and is_private(node.attr):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id == "self" and sdk_own is not None:
                    if node.attr in sdk_own:
                        self.report(node, f"self.{node.attr} (the SDK's own)")
                elif self.tainted(owner, names, self_attrs):
                    self.report(node, f"{ast.unparse(node)}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and (is_private(node.args[1].value) or node.args[1].value in BANNED_ATTRIBUTES)
                and self.tainted(node.args[0], names, self_attrs)
            ):
                self.report(node, ast.unparse(node))

    def learn(self, node: ast.AST, names: set[str], self_attrs: set[str]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for arg in node.args.args + node.args.kwonlyargs:
                if self.tainted(arg.annotation, names, self_attrs):
                    names.add(arg.arg)
            return
        if isinstance(node, ast.Assign):
            targets, value, annotation = node.targets, node.value, None
        elif isinstance(node, ast.AnnAssign):
            targets, value, annotation = [node.target], node.value, node.annotation
        elif isinstance(node, ast.NamedExpr):
            targets, value, annotation = [node.target], node.value, None
        else:
            return
        if not (
            self.tainted(value, names, self_attrs) or self.tainted(annotation, names, self_attrs)
        ):
            return
        for target in targets:
            for part in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(part, ast.Name):
                    names.add(part.id)
                elif (
                    isinstance(part, ast.Attribute)
                    and isinstance(part.value, ast.Name)
                    and part.value.id == "self"
                ):
                    self_attrs.add(part.attr)

    def report(self, node: ast.AST, what: str) -> None:
        self.problems.append(f"line {node.lineno}: {what}")


def check_sources(sources: dict[str, str]) -> list[str]:
    """Check modules given as {name: source}; return 'name line N: what' for each reach."""
    trees = {name: ast.parse(source) for name, source in sources.items()}
    sdk_types: dict[str, set[str]] = {}
    for tree in trees.values():  # subclasses first: other modules import them
        sdk_types.update(Checker(tree, {}).subclasses)
    return [
        f"{name} {problem}"
        for name, tree in trees.items()
        for problem in Checker(tree, sdk_types).run()
    ]


def app_sources() -> dict[str, str]:
    return {str(path.relative_to(APP)): path.read_text() for path in sorted(APP.rglob("*.py"))}


def test_app_uses_only_the_sdks_public_surface():
    assert check_sources(app_sources()) == []


def test_the_app_still_uses_the_sdk_where_the_guard_looks():
    """If the SDK left app/ entirely, the guard above would pass for the wrong reason."""
    trees = [ast.parse(source) for source in app_sources().values()]
    assert any(sdk_imports(tree) for tree in trees)


# The transport as it was before it was ours (app/vonage/transport.py and gateway.py, trimmed).
OLD_TRANSPORT = """
from vonage import HttpClientOptions, Vonage

def build_vonage_client(settings) -> Vonage:
    client = Vonage(auth=auth, http_client_options=options)
    session = client.http_client._session
    session.mount("https://", adapter)
    return client

class SmsGateway:
    def __init__(self, client: Vonage, settings):
        self.client = client

    def _call_vonage(self, body):
        http = self.client.http_client
        return http.post(http.api_host, "/v1/messages", body)
"""

REACHES = {
    "a banned attribute on anything": "def f(x):\n    return x.http_client\n",
    "a private attribute of an annotated parameter": (
        "from vonage import Vonage\n\ndef f(client: Vonage | None):\n    return client._auth\n"
    ),
    "a private attribute of a value read from the SDK": (
        "import vonage\n\ndef f():\n    client = vonage.Vonage(auth=None)\n"
        "    return client.messages._http_client\n"
    ),
    "getattr with a private name": (
        "from vonage import Auth\n\ndef f(auth: Auth):\n    return getattr(auth, '_jwt_client')\n"
    ),
    "an SDK attribute held on self": (
        "from vonage_messages import Sms\n\nclass G:\n    def __init__(self):\n"
        "        self.sms = Sms(to='1', from_='2', text='x')\n\n"
        "    def f(self):\n        return self.sms._x\n"
    ),
    "the SDK's own private name in our subclass": (
        "from vonage import Auth\n\nclass Ours(Auth):\n    def f(self):\n"
        "        return self._jwt_client\n"
    ),
}


def test_the_guard_catches_the_old_transport():
    problems = check_sources({"old.py": OLD_TRANSPORT})
    assert "old.py line 6: .http_client" in problems
    assert "old.py line 6: ._session" in problems
    assert "old.py line 6: client.http_client._session" in problems
    assert "old.py line 15: .http_client" in problems


@pytest.mark.parametrize("source", REACHES.values(), ids=REACHES.keys())
def test_the_guard_catches_each_kind_of_reach(source):
    assert check_sources({"sample.py": source}) != []


def test_the_guard_allows_our_own_private_names():
    """A subclass's own state, and private names of non-SDK objects, are not the SDK's."""
    source = (
        "import threading\nfrom vonage import Auth\n\nclass Ours(Auth):\n"
        "    def __init__(self):\n        super().__init__(application_id='a', private_key='k')\n"
        "        self._lock = threading.Lock()\n\n"
        "    def f(self, other):\n        return self._lock, other._anything\n"
    )
    assert check_sources({"sample.py": source}) == []
