"""The ownership checker of the strict-mode tests: from the workers' own logs (fakeworker.py's
--events with --log-leases: serve, delete and lease grants, with wall times) it computes when
each holder effectively owned each partition, and reports two owners at once (overlaps) and
generations that did not grow (regressions). A holder is one worker process (one events file):
two processes of one node id are two holders. Its effective ownership of a partition runs from
its serve to its delete, cut short where its lease ran out first (a paused or cut-off process
logs its delete late, when it runs again, but owned nothing past its lease)."""
import time

from harness import read_events


def ownership(events_by_holder, ended_at=None):
    """{partition: [(start, end, holder, generation, slot)]} sorted by start (slot: the
    replica slot the serve named, None when the log does not say). A span still open ends at
    its lease, or at ended_at[holder] (or now) without one."""
    ended_at = ended_at or {}
    spans = {}
    for holder, evs in events_by_holder.items():
        open_ = {}  # partition -> (start, generation, slot)
        until = None  # the lease's end, once one was granted

        def lapse(at):
            for p, (t, g, sl) in open_.items():
                spans.setdefault(p, []).append((t, at, holder, g, sl))
            open_.clear()

        for e in evs:
            if e["op"] == "lease":
                if until is not None and e["t"] > until:
                    lapse(until)  # lapsed before this renewal
                until = e["until"] if until is None else max(until, e["until"])
            elif e["op"] == "serve":
                if until is not None and e["t"] > until:
                    lapse(until)
                p, now_ = e["partition"], (e["t"], e["generation"], e.get("slot"))
                if p in open_ and open_[p][1:] != now_[1:]:
                    # served again at another generation or slot: a new span from here
                    t, g, sl = open_.pop(p)
                    spans.setdefault(p, []).append((t, e["t"], holder, g, sl))
                open_.setdefault(p, now_)
            elif e["op"] == "delete" and e["partition"] in open_:
                t, g, sl = open_.pop(e["partition"])
                end = e["t"] if until is None else min(e["t"], until)
                spans.setdefault(e["partition"], []).append((t, end, holder, g, sl))
        end = ended_at.get(holder, time.time())
        lapse(end if until is None else min(end, until))
    for ss in spans.values():
        ss.sort()
    return spans


def _crowded(p, ss, limit, bad):
    """Appends (p, [holders], seconds) for every stretch in which more than `limit` of the
    spans ss ran at once."""
    edges = sorted([(s[0], 1, s[2]) for s in ss] + [(s[1], -1, s[2]) for s in ss],
                   key=lambda e: (e[0], e[1]))  # an end before a start at the same time
    held, since = [], None
    for t, d, h in edges:
        if d > 0:
            held.append(h)
            if len(held) > limit and since is None:
                since, who = t, list(held)
        else:
            held.remove(h)
            if since is not None and len(held) <= limit:
                bad.append((p, sorted(set(who + [h])), round(t - since, 3)))
                since = None


def overlaps(spans, replicas=1):
    """[(partition, [holders], seconds)]: every stretch of time in which more than `replicas`
    holders owned one partition at once (with replicas 1: two owners), or, where the logs name
    slots, two holders one replica slot."""
    bad = []
    for p, ss in spans.items():
        _crowded(p, ss, replicas, bad)
        if replicas > 1:
            for slot in {s[4] for s in ss if s[4] is not None}:
                _crowded(p, [s for s in ss if s[4] == slot], 1, bad)
    return bad


def node_of(holder):
    """A holder's node id: holders are named "node" or "node#incarnation"."""
    return holder.split("#", 1)[0]


def regressions(spans, replicas=1):
    """[(partition, old holder, old generation, new holder, new generation)] for every holder
    that took a replica over without a higher generation than the one it took it from: with
    replicas 1 any earlier holder of the partition; with more, an earlier holder of the same
    slot (where the logs name slots; else one whose ownership had ended before: others may
    share a generation placed in one step); always an earlier process of the same node id (a
    new incarnation is a new holder). A holder served again at a generation it held before (its
    lease lapsed, the slot never moved) continues, and is not a takeover. Across slots of one
    partition generations are not ordered: each slot's owner keeps the one it was given."""
    bad = []
    for p, ss in spans.items():
        for j, (b0, _, bn, bg, bs) in enumerate(ss):
            if any(h == bn and g == bg for _, _, h, g, _ in ss[:j]):
                continue
            for a0, a1, an, ag, sl in ss[:j]:
                if an == bn or bg > ag or a0 >= b0:
                    continue
                known = sl is not None and bs is not None
                same = sl == bs if known else a1 <= b0
                if replicas == 1 or same or node_of(an) == node_of(bn):
                    bad.append((p, an, ag, bn, bg))
                    break
    return bad


def owners_moved(spans):
    """The partitions that had more than one holder (the positive control: a test that moved
    nothing proves nothing)."""
    return sorted(p for p, ss in spans.items() if len({s[2] for s in ss}) > 1)


def check(holders, replicas=1, ended_at=None):
    """Reads each holder's events file ({holder: path}) and returns (spans, overlaps,
    regressions)."""
    spans = ownership({h: read_events(path) for h, path in holders.items()}, ended_at)
    return spans, overlaps(spans, replicas), regressions(spans, replicas)
