"""Extension points discovered from installed packages (Python entry points), as the ``llm`` tool does.

A package registers an extra generator backend or embedder by declaring an entry point; the object it names
is the factory, registered under the entry point's name exactly as the built-ins are::

    # pyproject.toml of a package "ragcds-foo"
    [project.entry-points."ragcds.backends"]
    foo = "ragcds_foo:make_generator"      # factory(ref: str | None, **options) -> Generator

    [project.entry-points."ragcds.embedders"]
    foo = "ragcds_foo:make_embedder"       # factory(arg: str) -> Embedder   (--embedder foo:ARG)

After ``pip install ragcds-foo``, ``--backend foo`` and ``--embedder foo:ARG`` work. Each group is read once,
on the first lookup in its registry; a plugin that fails to import is remembered with its error, so asking
for it names the package instead of saying "unknown".
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata

BACKENDS = "ragcds.backends"
EMBEDDERS = "ragcds.embedders"

_loaded: set[str] = set()
_failures: dict[str, dict[str, str]] = {}  # group -> {name: "module:attr: error"}


def entry_points(group: str) -> list[metadata.EntryPoint]:
    return list(metadata.entry_points(group=group))


def load(group: str, register: Callable[[str, object], None]) -> None:
    """Register every entry point of ``group`` through ``register(name, factory)`` (once per group; a
    name the code has registered already is kept: built-ins and explicit registrations win)."""
    if group in _loaded:
        return
    _loaded.add(group)
    failures = _failures.setdefault(group, {})
    for ep in entry_points(group):
        try:
            factory = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break ragcds; reported on use
            failures[ep.name] = f"{ep.value}: {type(exc).__name__}: {exc}"
            continue
        register(ep.name, factory)


def failure(group: str, name: str) -> str | None:
    """Why the plugin ``name`` of ``group`` could not be loaded (None: it loaded, or there is none)."""
    return _failures.get(group, {}).get(name)


def state() -> tuple[set[str], dict[str, dict[str, str]]]:
    """The discovery state (tests save and restore it with the registries)."""
    return set(_loaded), {g: dict(f) for g, f in _failures.items()}


def restore(saved: tuple[set[str], dict[str, dict[str, str]]]) -> None:
    _loaded.clear()
    _loaded.update(saved[0])
    _failures.clear()
    _failures.update(saved[1])
