# Runs ON MicroPython (or CPython): one client request through the real SipStack, with
# digest auth, printing "RESULT <outcome> <status> <ms>".
#   micropython sip_client.py LOCAL_IP LOCAL_PORT KIND TARGET_IP TARGET_PORT METHOD [RETRY]
import sys

from sipua.sched import Scheduler
from sipua.sip.auth import Auth
from sipua.sip.ctrans import RESPONSE
from sipua.sip.stack import SipStack

OUTCOME_NAMES = ("", "response", "unavailable", "timeout", "transport_error")  # by ctrans id


def main(argv):
    ip, port, kind, tip, tport, method = argv[1:7]
    retry = int(argv[7]) if len(argv) > 7 else 3
    sched = Scheduler()
    st = SipStack(sched, ip, int(port), retry_count=retry)
    st.start()
    target = (kind, tip, int(tport))
    auth = Auth("6903", "secret")
    req = st.make_request(method, "sip:sipfw.test", "sip:6903@sipfw.test",
                          contact=st.contact("6903", kind))
    if method == "REGISTER":
        req.set("Expires", "60")
    done = []
    t0 = sched.now()

    def on_result(outcome, m):
        if outcome == RESPONSE and m.status in (401, 407) and auth.answer(req, m):
            req.cseq += 1
            st.request(req, target, on_result)
            return
        done.append((outcome, m.status if m else 0, sched.now() - t0))

    st.request(req, target, on_result)
    sched.run_until(lambda: done, 20000)
    st.stop()
    if done:
        print("RESULT %s %d %d" % (OUTCOME_NAMES[done[0][0]], done[0][1], done[0][2]))
    else:
        print("RESULT none 0 0")


main(sys.argv)
