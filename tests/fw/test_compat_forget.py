"""compat.forget: a boot-only module is unloaded and its heap given back (MicroPython)."""

import gc
import sys

from sipua.compat import IS_MICROPYTHON, forget


def test_forget_unloads_and_a_new_import_works():
    import sipua

    fresh = "sipua.upload" not in sys.modules
    gc.collect()
    before = gc.mem_alloc() if IS_MICROPYTHON else 0
    from sipua import upload

    assert upload.Upload
    del upload
    forget("sipua.upload")
    if not IS_MICROPYTHON:
        assert "sipua.upload" in sys.modules  # CPython: a no-op (tests hold its classes)
        return
    assert "sipua.upload" not in sys.modules and not hasattr(sipua, "upload")
    gc.collect()
    if fresh:  # nothing else held it: everything it took is free again
        assert gc.mem_alloc() - before < 256, gc.mem_alloc() - before
    from sipua import upload  # loaded afresh

    assert upload.Upload and "sipua.upload" in sys.modules


def test_forget_of_a_module_never_loaded_is_harmless():
    forget("sipua.no_such_module")
    forget("toplevel_never_loaded")
