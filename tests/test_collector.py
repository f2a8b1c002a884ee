"""The serving process's collector policy: survivors of full collections frozen, given back on turnover."""

from __future__ import annotations

import gc

import pytest

from peerlift import collector


@pytest.fixture
def policy(monkeypatch):
    monkeypatch.setattr(collector, "TURNOVER", 5)
    monkeypatch.setattr(collector, "_open", 0)
    monkeypatch.setattr(collector, "_closed", 0)
    monkeypatch.setattr(collector, "_freezes", 0)
    collector.install()
    yield collector
    collector.uninstall()
    gc.collect()


class Node:
    def __init__(self):
        self.other = None


def _cycle() -> list[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return [a, b]


def test_install_freezes_what_is_loaded_and_each_full_collection_freezes_its_survivors(policy):
    assert gc.get_freeze_count() > 0  # modules, classes: the process's lasting objects
    kept = [Node() for _ in range(1000)]
    frozen_before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() >= frozen_before + 1000
    assert all(gc.is_tracked(k) for k in kept)


def test_a_cycle_frozen_while_alive_is_freed_once_streams_have_turned_over(policy):
    import weakref

    pair = _cycle()
    gc.collect()  # the pair survives and is frozen
    watch = weakref.ref(pair[0])
    del pair
    gc.collect()
    assert watch() is not None  # garbage, but frozen: the collector does not look at it
    for _ in range(3):
        collector.stream_opened()
    for _ in range(4):
        collector.stream_closed()
    gc.collect()
    assert watch() is not None  # 4 closed < TURNOVER (5)
    collector.stream_closed()  # the fifth: frozen objects go back to the collector
    gc.collect()
    assert watch() is None


def test_turnover_counts_against_the_open_streams(policy):
    import weakref

    for _ in range(20):
        collector.stream_opened()
    pair = _cycle()
    gc.collect()
    watch = weakref.ref(pair[0])
    del pair
    for _ in range(9):  # 9 closed, 11 still open: not yet a turnover of the open streams
        collector.stream_closed()
    gc.collect()
    assert watch() is not None
    collector.stream_closed()  # 10 closed, as many as are open
    gc.collect()
    assert watch() is None


def test_frozen_objects_go_back_after_max_freezes(policy, monkeypatch):
    import weakref

    monkeypatch.setattr(collector, "MAX_FREEZES", 3)
    pair = _cycle()
    gc.collect()  # freeze 1 (of 3)
    watch = weakref.ref(pair[0])
    del pair
    gc.collect()  # freeze 2
    assert watch() is not None
    gc.collect()  # freeze 3: everything given back
    gc.collect()
    assert watch() is None


def test_uninstalled_the_collector_behaves_as_usual():
    import weakref

    assert not collector._installed
    pair = _cycle()
    gc.collect()
    watch = weakref.ref(pair[0])
    del pair
    gc.collect()
    assert watch() is None


def test_hub_tells_the_policy_of_opened_and_closed_streams(monkeypatch):
    import asyncio

    from peerlift.delivery.hub import Hub

    seen = []
    monkeypatch.setattr(collector, "stream_opened", lambda: seen.append("open"))
    monkeypatch.setattr(collector, "stream_closed", lambda: seen.append("closed"))
    hub = Hub()
    loop = asyncio.new_event_loop()
    conn = hub.register(1, {"space:1"}, loop)
    hub.unregister(conn)
    hub.unregister(conn)  # twice: counted once
    loop.close()
    assert seen == ["open", "closed"]
