"""compat.forget: a boot-only module is unloaded and its heap given back (MicroPython)."""

import gc
import sys

from sipua.compat import IS_MICROPYTHON, forget


def _load_and_forget():
    from sipua import upload

    assert upload.Upload and "sipua.upload" in sys.modules
    del upload
    forget("sipua.upload")


def test_forget_unloads_and_a_new_import_works():
    import sipua
    from sipua import console  # noqa: F401  always loaded on a board; upload uses its error

    _load_and_forget()
    if not IS_MICROPYTHON:
        assert "sipua.upload" in sys.modules  # CPython: a no-op (tests hold its classes)
        return
    assert "sipua.upload" not in sys.modules and not hasattr(sipua, "upload")
    # The first load interned the module's names (the qstr pool, which a frozen or .mpy
    # build keeps in flash); from then on a load and unload gives back all it took.
    gc.collect()
    before = gc.mem_alloc()
    _load_and_forget()
    gc.collect()
    assert gc.mem_alloc() - before < 256, gc.mem_alloc() - before
    from sipua import upload  # loaded afresh

    assert upload.Upload and "sipua.upload" in sys.modules


def test_forget_of_a_module_never_loaded_is_harmless():
    forget("sipua.no_such_module")
    forget("toplevel_never_loaded")
