"""A registration's resolution (``Registration._resolve``): every name of the account's
plan (``Account.locate_plan``) through the locator, the answers merged, then the first
server tried. Loaded with the DNS code for a resolution and forgotten after it."""

from .servers import describe


def resolve(reg, why):
    """Resolve the account's plan (``Account.locate_plan``), then try the servers in order."""
    plan = reg.account.locate_plan()
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
