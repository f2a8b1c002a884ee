"""Opt-in garbage-collector probe for the server process of bench/stream.py (``--gc-stats``).

bench/stream.py puts this folder first on the server's PYTHONPATH and sets
PEERLIFT_BENCH_GC_OUT; Python imports ``sitecustomize`` at start-up, so the server then records
every collection (count, total and longest pause per generation, and each full collection) through ``gc.callbacks`` and
rewrites the JSON file every 0.2 s. Without PEERLIFT_BENCH_GC_OUT this module does nothing.
"""

import os

_OUT = os.environ.get("PEERLIFT_BENCH_GC_OUT")
if _OUT:
    import gc
    import json
    import threading
    import time

    _stats = {g: {"collections": 0, "seconds": 0.0, "max_seconds": 0.0} for g in (0, 1, 2)}
    _start = [0.0]
    _gen2: list = []  # [wall-clock end (time.time()), seconds] of each full collection, the last 500

    def _callback(phase, info):
        if phase == "start":
            _start[0] = time.perf_counter()
            return
        pause = time.perf_counter() - _start[0]
        s = _stats[info["generation"]]
        s["collections"] += 1
        s["seconds"] += pause
        s["max_seconds"] = max(s["max_seconds"], pause)
        if info["generation"] == 2:
            _gen2.append([time.time(), pause])
            del _gen2[:-500]

    gc.callbacks.append(_callback)

    def _writer():
        while True:
            time.sleep(0.2)
            tmp = _OUT + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"generations": {str(g): dict(s) for g, s in _stats.items()},
                           "gen2_pauses": list(_gen2)}, f)
            os.replace(tmp, _OUT)

    threading.Thread(target=_writer, daemon=True, name="bench-gc-probe").start()
