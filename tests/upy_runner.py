# Runs firmware test modules ON MicroPython and reports each test function on one line.
#   micropython tests/upy_runner.py test_sched [test_log ...]
# Output, read back by tests/test_on_micropython.py:
#   @@PASS module function
#   @@FAIL module function   (followed by the traceback, then @@END)
import sys


def run_module(name):
    try:
        mod = __import__(name)
    except Exception as e:  # noqa: BLE001 - any failure is reported, and the run goes on
        print("@@IMPORTFAIL", name)
        sys.print_exception(e)
        print("@@END")
        return
    for attr in sorted(dir(mod)):
        if not attr.startswith("test_"):
            continue
        fn = getattr(mod, attr)
        if not callable(fn):
            continue
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - any failure is reported, and the run goes on
            print("@@FAIL", name, attr)
            sys.print_exception(e)
            print("@@END")
        else:
            print("@@PASS", name, attr)


for _name in sys.argv[1:]:
    run_module(_name)
print("@@DONE")
