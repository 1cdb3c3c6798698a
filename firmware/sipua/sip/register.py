"""One REGISTER of a registration (``Registration._r``): made and sent to a target, its
answer taken — a challenge answered, the 200's binding and interval adopted, the next
refresh timed. Runs once per REGISTER and answer (a refresh every few minutes), so it is
loaded for each step and forgotten after it, as ``regextra.py`` is for the rare ones; the
transaction's callback and the timers stay ``reg.py``'s.
"""

from ..compat import const
from .auth import Auth
from .reg import REGISTERED
from .servers import _unit_random, describe, target_key

# hdr.py's ids (private: no dict entry here; a host test checks they match)
_H_CONTACT = const(7)
_H_EXPIRES = const(18)


def _attempt(reg, target):
    """A fresh REGISTER to ``target`` (new Call-ID when the registrar changes)."""
    if reg._stopped:
        return
    acc = reg.account
    key = target_key(target)
    if key not in reg._tried:
        reg._tried.append(key)
    if reg.server is None or target_key(reg.server) != key:
        # One Call-ID per registrar (RFC 3261 §10.2.4 keeps it across refreshes), and
        # fresh digest state: "this nonce was already answered" is about one server.
        reg.call_id = None
        reg.from_tag = None
        reg.auth = Auth(acc.auth_user, acc.password, acc.ha1)
    req = reg.stack.make_request("REGISTER", acc.registrar_uri, acc.aor,
                                  call_id=reg.call_id, cseq=reg.cseq + 1,
                                  from_tag=reg.from_tag,
                                  from_display=acc.display_name or None)
    reg.call_id = req.call_id
    reg.from_tag = req.from_tag
    c = reg.stack.contact(acc.user, target.transport)
    if acc.instance:  # RFC 5626 §4.2: a reboot or a new address replaces the binding
        req.set("Supported", "outbound")
        c = c + acc.instance + str(reg.leg + 1)  # reg-id: 1 primary, 2 backup
    req.contact = c
    req.set("Expires", str(reg.expires))
    reg._send(target, req)


def _on_response(reg, target, req, resp):
    code = resp.status
    if 200 <= code < 300:
        _registered(reg, target, req, resp)
    elif code in (401, 407):
        # Auth.answer refuses a request that carried our answer challenged again (but
        # for one stale=true): the credentials are wrong, another server won't differ.
        if reg.auth.answer(req, resp):
            reg._send(target, req)
        else:
            reg._x("auth_failed", target, resp)
    else:  # 423, 5xx, 3xx, 403 ...
        reg._x("refused", target, req, resp)


def _registered(reg, target, req, resp):
    granted = _granted_expires(resp, req.contact, reg.expires)
    if granted <= 0:
        reg._x("give_up", target, "200 without a binding")
        return
    old = reg.server
    reg.server = target
    reg.granted = granted
    reg.registered_at = reg.sched.now()
    reg.failures = 0
    reg.last_error = None
    reg.servers.release(target)
    _hold_flow(reg, resp.flow)
    # The digest state keeps the request that carried its last answer, to tell a refused
    # answer from a new challenge; a request that got its 200 is never challenged again,
    # and the refresh is a new one: let this one go (~0.7 KB with its headers).
    reg.auth._req = None
    preferred = reg.servers.is_preferred(target)
    if preferred:
        if reg.failed_over_at is not None:
            reg.log.info("reg", "failback_done", account=reg.account.label,
                          server=describe(target))
        reg.failed_over_at = None
    elif reg.failed_over_at is None:
        reg.failed_over_at = reg.sched.now()
    reg._set_state(REGISTERED)
    reg.log.info("reg", "registered", account=reg.account.label, server=describe(target),
                  expires=granted, preferred=1 if preferred else 0)
    if (old is not None and target_key(old) != target_key(target)
            and reg.account.redundancy == "successive"):
        reg._x("unregister", old)
    reg._schedule(refresh_delay_ms(granted), reg._refresh)
    if not preferred:
        reg._x("arm_failback")


def _hold_flow(reg, flow):
    """Keep the TCP/TLS connection of our binding open (the transport closes idle ones):
    the registrar reaches a phone registered over a stream only down that connection —
    Kamailio stores its source, RFC 5626 calls it the flow."""
    if flow is not None and not getattr(flow, "reliable", False):
        flow = None
    old = reg._flow
    if old is flow:
        return
    if old is not None:
        reg.stack.tp.pin(old, False)
    if flow is not None:
        reg.stack.tp.pin(flow)
    reg._flow = flow


def refresh_delay_ms(expires_s, rand=_unit_random):
    """When to re-REGISTER: 80–90 % into the granted interval, so a lab of boards spreads out.

    Never closer than 2 s to expiry, never sooner than 1 s.
    """
    ms = int(expires_s * 1000 * (0.8 + rand() / 10))
    latest = expires_s * 1000 - 2000
    if ms > latest:
        ms = latest
    return ms if ms > 1000 else 1000


def _granted_expires(resp, contact, expires):
    """The interval the registrar granted our binding (RFC 3261 §10.2.4).

    The ``expires`` parameter of *our* Contact in the 200 wins, then the Expires header,
    then what we asked for. Ours is recognised by its URI (the registrar lists every binding
    of the address of record).
    """
    ours = None  # the URI of our Contact, without its parameters
    if contact:
        lt = contact.find("<")
        gt = contact.find(">")
        ours = contact[lt + 1:gt] if 0 <= lt < gt else contact
        semi = ours.find(";")
        if semi > 0:
            ours = ours[:semi]
    for v in resp.values(_H_CONTACT):
        text = v.decode() if isinstance(v, (bytes, bytearray)) else v
        if ours and ours in text:
            semi = text.find(">")
            params = text[semi + 1:] if semi >= 0 else text
            for p in params.split(";"):
                p = p.strip()
                if p.lower().startswith("expires="):
                    try:
                        return int(p[8:])
                    except ValueError:
                        break
    exp = resp.int(_H_EXPIRES)
    return exp if exp is not None else expires
