"""A registration's resolution (``Registration._resolve``): every name of the account's
plan (``locate_plan``) through the locator, the answers merged, then the first server
tried. Loaded with the DNS code for a resolution and forgotten after it."""

from .servers import describe


def resolve(reg, why):
    """Resolve the account's plan (``locate_plan``), then try the servers in order."""
    plan = locate_plan(reg.account)
    found = []

    def step(i, targets=None, err=None):
        """Name ``i`` of the plan next; first the answer for name ``i - 1``."""
        if targets:
            found.append(targets)
        elif err:
            reg.log.warn("reg", "resolve_failed", account=reg.account.label,
                         name=plan[i - 1][0], reason=err)
        if i < len(plan):
            host, port, transport = plan[i]
            reg.locator.locate(host, lambda ts, e: step(i + 1, ts, e),
                               transport=transport, port=port)
            return
        if reg._stopped:  # every name answered
            return
        merged, ttl = [], None
        for ts in found:
            merged.extend(ts)
            t = getattr(ts, "ttl", None)
            if t is not None and (ttl is None or t < ttl):
                ttl = t
        if not merged:
            reg.last_error = "dns"
            reg._x("all_failed")
            return
        reg.servers.update(merged, ttl)
        reg.log.info("reg", "resolved", account=reg.account.label, why=why,
                     targets=" ".join(describe(t) for t in merged), ttl=ttl)
        reg._begin(reg._first_choice())

    step(0)


def locate_plan(acc):
    """What to hand the locator for ``account.Account`` ``acc``, in order:
    [(host, port, transport), ...].

    With an outbound proxy, requests go to the proxy (and its backup after it) instead of
    the domain's own servers (RFC 3263 §4: the proxy is the next hop).
    """
    if acc.outbound_proxy:
        from ..addr import hostport  # unloaded with the DNS code

        plan = [hostport(acc.outbound_proxy) + (acc.transport,)]
        if acc.backup_outbound_proxy:
            plan.append(hostport(acc.backup_outbound_proxy) + (acc.transport,))
        return plan
    return [(acc.domain, acc.port, acc.transport)]
