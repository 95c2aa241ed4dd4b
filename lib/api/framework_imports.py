"""Powertools' event handler loaded for what a REST function uses, not every resolver it ships.

The packages `aws_lambda_powertools.event_handler` and `aws_lambda_powertools.utilities.data_classes`
import, in their `__init__`, every resolver and every event class Powertools has (AppSync, which
imports asyncio; AppSync events; Bedrock agents; VPC Lattice; Lambda function URLs; CodePipeline,
which imports tempfile and shutil; Kinesis, S3, SES...), and wrapt's imports asyncio too. No request
of this API uses them, and every cold start paid for them (bench/imports.py measures what is loaded
and never runs).

`defer()` registers such a package without running its `__init__`: a name the `__init__` would
import is imported from its own module when first asked for (`from aws_lambda_powertools
.event_handler import Response` imports `...event_handler.api_gateway` only), a submodule is
imported as usual, and any other use of the package runs the real `__init__` once. Nothing can break:
at worst a package costs what it always cost. It must run before anything imports the packages:
handlers/__init__.py calls it first. tests/unit/test_cold_start_imports.py fails if they come back.

The cyclic garbage collector is paused while a handler imports (`pause_collector`, from
handlers/__init__.py): the import creates some 116,000 objects that live as long as the process, and
the collector's passes over them as they accumulated cost some 5 to 10 % of a cold start's CPU
(docs/DESIGN.md, Deployment). Once the
handler is built (`imports_done`: lib.api.entry.handler_for, and the feed's handler) they are moved to
the collector's permanent generation (`gc.freeze`, so its later passes never walk them again) and
collection resumes. tests/unit/test_cold_start_imports.py imports every handler in a fresh process
and fails if one leaves the collector paused.
"""

from __future__ import annotations

import ast
import gc
import importlib.util
import sys
import threading
from typing import Any

# wrapt (2.x), which the X-Ray SDK patches botocore with, imports asyncio in its `__init__` (for
# `synchronized` on coroutines); the SDK uses its function wrappers only.
PACKAGES = ("aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.data_classes", "wrapt")
_lock = threading.RLock()


def _names(spec: Any) -> dict[str, str]:
    """Name -> module of every `from X import name` at the top of the package's `__init__`."""
    source = spec.loader.get_source(spec.name)
    found: dict[str, str] = {}
    for node in ast.parse(source or "").body:
        if isinstance(node, ast.ImportFrom) and node.module:
            module = importlib.util.resolve_name("." * node.level + node.module, spec.name) if node.level \
                else node.module
            for alias in node.names:
                found[alias.asname or alias.name] = module
    return found


def _imported(module: str) -> Any:
    """`module`, imported by the import statement's own machinery (importlib.import_module takes
    another path, which `-X importtime` does not report)."""
    __import__(module)
    return sys.modules[module]


def defer(name: str) -> bool:
    """Register the package `name` without running its `__init__` (see the module's docstring).
    False when that cannot be done (already imported, not a package, no source to read)."""
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None or spec.loader is None:
        return False
    try:
        names = _names(spec)
    except (OSError, SyntaxError, ImportError):
        return False
    module = importlib.util.module_from_spec(spec)

    def load_whole() -> None:
        """Run the package's own `__init__` (once): from now on it is the package as shipped."""
        with _lock:
            if module.__dict__.pop("__getattr__", None) is not None:
                spec.loader.exec_module(module)

    def __getattr__(attribute: str) -> Any:  # a module's attribute hook (PEP 562)
        if attribute in names:
            value = getattr(_imported(names[attribute]), attribute)
            setattr(module, attribute, value)
            return value
        try:
            return _imported(f"{name}.{attribute}")
        except ModuleNotFoundError as missing:
            if missing.name != f"{name}.{attribute}":
                raise
        load_whole()
        try:
            return module.__dict__[attribute]
        except KeyError:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}") from None

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = module
    return True


def defer_unused_resolvers() -> None:
    """Defer every package of PACKAGES (idempotent)."""
    for name in PACKAGES:
        defer(name)


def pause_collector() -> None:
    """Pause the cyclic garbage collector while a handler imports (see the module's docstring)."""
    gc.disable()


def imports_done() -> None:
    """The handler is imported and built: what it made lives as long as the process, so the collector
    leaves it out of its passes from now on (gc.freeze), and collects again."""
    gc.freeze()
    gc.enable()
