"""Every module of peerlift imports on its own, first, in a fresh interpreter: an import cycle between
domains (which the app's usual import order can hide) fails here with the module's name."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import peerlift

SCRIPT = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "peerlift" or m.startswith("peerlift.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
"""


def test_every_module_imports_first():
    names = sorted(m.name for m in pkgutil.walk_packages(peerlift.__path__, "peerlift.")
                   if ".migrations." not in m.name and not m.name.endswith("__main__"))
    assert len(names) > 50
    done = subprocess.run([sys.executable, "-c", SCRIPT, *names], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", "modules that fail to import first:\n" + done.stdout
