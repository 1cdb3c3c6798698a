"""What the link watch (``Agent._watch``, every second) does when something changed: the
link went down, came back, or came back with another address. Loaded for that moment and
forgotten once the link is up again (a board whose Wi-Fi is down keeps it loaded).

``agent.net`` = [address, up, lost, down at, last outage ms, tries, next try at, the watch's
timer, follow the OS's address (``sip.local_ip`` unset: ``hal.unix.link``)]:

- down (``hal.link`` gives None: the WLAN is not connected; on the unix port the address
  cannot be bound any more): ``net link_down``, counted; the Wi-Fi is asked to reconnect
  (``hal.reconnect``, a no-op where the OS owns the network) with exponential back-off
  (1 s doubling to 32 s) and a random jitter of up to half the wait, never a blocking wait.
- up: ``net link_up`` with the outage, and every registration REGISTERs at once (the
  servers it held and the failures it counted while the link was down are forgotten).
- a new address (the WLAN's DHCP gave another one; on the unix port without
  ``sip.local_ip``, the OS's source address toward the DNS server changed):
  ``net address_changed old= new=``; the SIP sockets are bound to it again, calls in
  progress end (BYE attempted from the new address), and the REGISTERs carry the new
  Contact; the +sip.instance / reg-id of every Contact makes the registrar replace the
  old binding.
"""

from . import hal
from .compat import urandom_u32


def step(agent, ip):
    net = agent.net
    now = agent.sched.now()
    log = agent.log
    if ip is None:
        if net[1]:
            net[1] = 0
            net[2] += 1
            net[3] = now
            net[5] = 0
            net[6] = now + 1000
            log.warn("net", "link_down", ip=net[0], lost=net[2])
        elif now >= net[6]:
            wait = 1000 << (net[5] if net[5] < 5 else 5)
            net[5] += 1
            net[6] = now + wait + urandom_u32() % (wait >> 1)
            hal.reconnect()
        return
    old = net[0]
    if not net[1]:
        net[1] = 1
        net[4] = now - net[3]
        log.info("net", "link_up", ip=ip, outage_ms=net[4])
    net[0] = ip
    if ip != old:
        log.warn("net", "address_changed", old=old, new=ip)
        move(agent, ip)
    for r in agent.registrations:
        t = r._txn
        if t is not None:  # sent while the link was down: its answer will not come
            r._txn = None
            t.abandon()
        r.servers._held.clear()  # servers that failed while the link was down: not their fault
        r.failures = 0
        r.register_now()


def move(agent, ip):
    """The SIP sockets on ``ip``; the calls ended (their dialogs named the old address)."""
    st = agent.stack
    tp = st.tp
    tcp = tp.tcp is not None
    tp.unlisten()
    tp.local_ip = ip
    for f in list(tp.flows.values()):
        tp._close(f, None)
    tp.listen(tcp)
    agent.locator.local_ip = ip
    calls = agent.calls
    if calls is not None:
        for c in list(calls.calls):
            if c.state != "ended":
                agent.log.info("call", "address_changed", call=c.id)
                calls.hangup(c.id)
