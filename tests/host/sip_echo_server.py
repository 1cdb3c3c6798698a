"""Run only the SIP stack, answering on a port: for tests on MicroPython before (and
without) the full agent.

    MICROPYPATH=<board tree>:tests/host micropython -m sip_echo_server [IP [PORT [LOGLEVEL]]]
    PYTHONPATH=firmware:tests/host python -m sip_echo_server 127.0.2.1 5060 debug

A test driver, not part of the board image (tests/host/sip_proc.py starts it).

It listens on UDP and TCP, answers OPTIONS 200, INVITE 480 (no call agent), malformed and
unsupported requests as uas.py says, and prints ``READY <ip> <port>`` once listening.
"""

import sys


def serve(ip="127.0.0.1", port=5060, level="warn", until_ms=None):
    from sipua.log import log
    from sipua.sched import Scheduler
    from sipua.sip.stack import SipStack
    from sipua.startup import level_from_name

    log.level = level_from_name(level)
    sched = Scheduler(log=log)
    stack = SipStack(sched, local_ip=ip, local_port=port, log=log)
    stack.start()
    print("READY %s %d" % (ip, port))
    try:
        while True:
            try:
                sched.run(until_ms)
                break
            except MemoryError:  # e.g. while printing a traceback: collect and go on
                import gc

                gc.collect()
    finally:
        stack.stop()


def main(argv):
    ip = argv[1] if len(argv) > 1 else "127.0.0.1"
    port = int(argv[2]) if len(argv) > 2 else 5060
    level = argv[3] if len(argv) > 3 else "warn"
    serve(ip, port, level)


if __name__ == "__main__":
    main(sys.argv)
