"""How a serving process uses Python's garbage collector (``PEERLIFT_GC_FREEZE``, on by default).

A process holding thousands of live streams holds millions of long-lived objects (each open stream
keeps its task, its coroutines and the server's connection objects, about 130 of them). CPython's
full collection walks every one: about a second at 10,000 streams, during which no frame is sent.

So, after each full collection, its survivors are *frozen* (``gc.freeze``): moved out of the
collector's generations, so the next full collections walk only what was created since. Frozen
objects are still freed by reference counting when let go; what freezing keeps is garbage made of
reference cycles (about 20 objects per closed stream: uvicorn's connection objects and the
request's exit stacks). To bound that, the frozen objects are given back to the collector
(``gc.unfreeze``), and the next full collection walks them all once, when as many streams have
closed since the last time as are open (at least ``TURNOVER``), or after ``MAX_FREEZES`` freezes:
one long pause per turnover of the streams instead of one every few minutes.
"""

from __future__ import annotations

import gc
import threading

TURNOVER = 1000
MAX_FREEZES = 16

_lock = threading.Lock()
_installed = False
_freezes = 0          # freezes since the last unfreeze
_closed = 0           # streams closed since the last unfreeze
_open = 0             # streams open now


def install() -> None:
    """Freeze what is loaded now (modules, the app, rules and model: it lives as long as the process)
    and the survivors of every full collection from now on. Idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    gc.freeze()
    gc.callbacks.append(_after_collection)


def uninstall() -> None:
    """Back to the collector's usual ways, everything frozen given back (for tests)."""
    global _installed
    with _lock:
        if not _installed:
            return
        _installed = False
    gc.callbacks.remove(_after_collection)
    _give_back()


def _after_collection(phase: str, info: dict) -> None:
    global _freezes
    if phase != "stop" or info.get("generation") != 2:
        return
    gc.freeze()
    _freezes += 1
    if _freezes >= MAX_FREEZES:
        _give_back()


def _give_back() -> None:
    """The frozen objects go back to the oldest generation: the next full collection frees the
    reference cycles among them that became garbage, then freezes the survivors again."""
    global _freezes, _closed
    gc.unfreeze()
    _freezes = 0
    _closed = 0


def stream_opened() -> None:
    global _open
    with _lock:
        _open += 1


def stream_closed() -> None:
    global _open, _closed
    with _lock:
        _open = max(0, _open - 1)
        _closed += 1
        due = _installed and _closed >= max(TURNOVER, _open)
    if due:
        _give_back()
