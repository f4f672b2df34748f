"""Extension points: a pip-installed package registers a backend or an embedder through entry points
(``ragcds.backends``, ``ragcds.embedders``) and is then used exactly like a built-in. Installation is faked
at the importlib.metadata layer; the conftest ``registries`` fixture undoes every registration."""

from __future__ import annotations

import sys
import types
from importlib import metadata

import pytest

from ragcds import plugins
from ragcds.errors import BackendUnavailable, ModelNotFound
from ragcds.generate import backends
from ragcds.generate.backends import backend_names, load_generator, register_backend
from ragcds.index import embedders
from ragcds.index.embedders import embedder_names, load_embedder, load_query_embedder, register_embedder
from tests.fakes import FakeEmbedder, FakeGenerator


@pytest.fixture
def installed(monkeypatch):
    """A fake installed package ``ragcds_foo`` whose entry points name its factories."""
    module = types.ModuleType("ragcds_foo")
    module.calls = []  # type: ignore[attr-defined]

    def make_generator(ref, **options):
        module.calls.append(("generator", ref, options))
        return FakeGenerator(["from the plugin"], model_id=f"foo:{ref}")

    def make_embedder(arg):
        module.calls.append(("embedder", arg))
        return FakeEmbedder(int(arg or 32), salt="foo")

    module.make_generator, module.make_embedder = make_generator, make_embedder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ragcds_foo", module)
    points = {
        plugins.BACKENDS: [metadata.EntryPoint("foo", "ragcds_foo:make_generator", plugins.BACKENDS),
                           metadata.EntryPoint("broken", "ragcds_missing:factory", plugins.BACKENDS)],
        plugins.EMBEDDERS: [metadata.EntryPoint("foo", "ragcds_foo:make_embedder", plugins.EMBEDDERS)],
    }
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: points.get(group, []))
    plugins.restore((set(), {}))  # discovery runs again, against the fake installation
    return module


def test_an_installed_backend_works_like_a_built_in(installed):
    assert {"foo", "extractive", "openai", "transformers", "llamacpp"} <= set(backend_names())
    gen = load_generator("some-model", backend="foo", max_new_tokens=7)
    assert gen.model_id == "foo:some-model"
    assert installed.calls == [("generator", "some-model", {"max_new_tokens": 7})]


def test_an_installed_embedder_works_like_a_built_in(installed):
    assert {"foo", "default", "sentence-transformers"} <= set(embedder_names())
    emb = load_embedder("foo:48")
    assert emb.dim == 48 and installed.calls == [("embedder", "48")]
    assert load_query_embedder("foo:16").dim == 16  # the query path resolves plugins the same way


def test_a_broken_plugin_is_named_when_it_is_asked_for(installed):
    with pytest.raises(BackendUnavailable, match=r"backend plugin 'broken' could not be loaded .*ragcds_missing"):
        load_generator("m", backend="broken")
    with pytest.raises(BackendUnavailable, match="unknown backend 'nope'"):
        load_generator("m", backend="nope")


def test_code_registrations_win_over_plugins_of_the_same_name(installed):
    mine = FakeGenerator(["mine"])
    register_backend("foo", lambda ref, **o: mine)
    assert load_generator(None, backend="foo") is mine and installed.calls == []


def test_discovery_reads_each_group_once(monkeypatch):
    seen = []
    monkeypatch.setattr(plugins.metadata, "entry_points", lambda group: seen.append(group) or [])
    plugins.restore((set(), {}))
    backend_names(), backend_names(), embedder_names()
    assert seen == [plugins.BACKENDS, plugins.EMBEDDERS]


def test_unknown_embedder_says_what_to_pass(installed):
    with pytest.raises(ModelNotFound, match="pass 'default' or the path"):
        load_embedder("no-such-embedder")


def test_registrations_made_here_are_gone_in_the_next_test_part_1():
    register_backend("leaky", lambda ref, **o: FakeGenerator())
    register_embedder("leaky", lambda arg: FakeEmbedder())


def test_registrations_made_here_are_gone_in_the_next_test_part_2():
    assert "leaky" not in backends._BACKENDS and "leaky" not in embedders._FACTORIES
