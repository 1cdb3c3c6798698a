"""`sipfw bench`: scenarios against a PBX, measured from the board's own log.

    rig.py        a virtual board (start, flash, config push, clone) and the ONE serial
                  connection to it (log lines + console answers); shared with `make demo`
    pbx.py        the PBX: the local lab, or any PBX named by a bench config
    runner.py     one scenario run: boot, capture, marks, times, expectations -> result
    scenarios.py  register, call, failover-refused/-silent, failback, invite-/bye-failover,
                  storm, soak
    capture.py    tshark/tcpdump on lo beside the report
    report.py     the HTML page: ladder and timeline as inline SVG
"""
