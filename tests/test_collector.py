"""The serving process's collector policy: survivors of full collections frozen, given back on turnover.

Each case runs in a fresh interpreter: a full collection there walks a small heap, not the test run's."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import pytest

SETUP = """
import gc, weakref
from peerlift import collector
collector.TURNOVER = 5

class Node:
    other = None

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return [a, b]
"""

CASES = {
    "install_freezes_what_is_loaded_and_each_full_collection_freezes_its_survivors": """
        collector.install()
        assert gc.get_freeze_count() > 0  # modules, classes: the process's lasting objects
        kept = [Node() for _ in range(1000)]
        before = gc.get_freeze_count()
        gc.collect()
        assert gc.get_freeze_count() >= before + 1000
    """,
    "a_cycle_frozen_while_alive_is_freed_once_streams_have_turned_over": """
        collector.install()
        pair = cycle()
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
    """,
    "turnover_counts_against_the_open_streams": """
        collector.install()
        for _ in range(20):
            collector.stream_opened()
        pair = cycle()
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
    """,
    "frozen_objects_go_back_after_max_freezes": """
        collector.MAX_FREEZES = 3
        collector.install()
        pair = cycle()
        gc.collect()  # freeze 1 (of 3)
        watch = weakref.ref(pair[0])
        del pair
        gc.collect()  # freeze 2
        assert watch() is not None
        gc.collect()  # freeze 3: everything given back
        gc.collect()
        assert watch() is None
    """,
    "uninstalled_the_collector_behaves_as_usual": """
        collector.install()
        collector.uninstall()
        assert gc.get_freeze_count() == 0
        pair = cycle()
        gc.collect()
        watch = weakref.ref(pair[0])
        del pair
        gc.collect()
        assert watch() is None
    """,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_collector_policy(case):
    code = SETUP + textwrap.dedent(CASES[case])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_hub_tells_the_policy_of_opened_and_closed_streams(monkeypatch):
    import asyncio

    from peerlift import collector
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
    assert gc.isenabled()
