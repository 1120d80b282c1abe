"""The fast engine: the model of ``sim.model`` with numpy, station by station, in time batches.

No event list. Packets enter in batches of consecutive arrivals at the link; each station
keeps its state (server free times, service ends of the packets it holds) from batch to
batch and a buffer of packets that have reached it. A batch ends at the horizon ``H``, the
link arrival of the first packet of the next batch: every later packet reaches any station
behind the link at ``H + 1`` ps or later (a link service lasts at least 1 ps), so the
packets a downstream station holds with arrival ``<= H`` can be served now, in their final
order, and the rest wait for the next batch. The answer is therefore independent of the
batch size, and identical to the simpy engine's.

Inside a station, a FIFO queue with tail drop (``_FifoQueue.serve``) is computed in
stretches:

- vectorised: assume no packet is dropped in the stretch and compute every service end at
  once. One server: ``end_i = S_i + max(free, max_{j<=i}(t_j - S_{j-1}))`` with
  ``S`` the cumulative service (Lindley's recurrence solved with a cumulative maximum).
  k servers: two candidates, (a) packet i reuses the server of packet i-k (k interleaved
  one-server chains, valid while the sequence of server free times stays sorted), (b) no
  packet waits (``end = t + s``, valid while fewer than k packets are in service at each
  arrival). Then check the queue bound on the candidate: packet i was admissible if fewer
  than C earlier admitted packets are still in the station at ``t_i``; the stretch is
  accepted up to the first packet where a candidate is wrong or the bound is hit;
- scalar: from that packet on, a plain loop (a deque for one server, heaps for k) until
  the station empties (or a length limit), then vectorised again. Only congested
  stretches run in Python; the loop length adapts so that a station that stays full does
  not retry the vectorised path at every packet.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from sim.model import HOST, LINK, NIC, PCIE, SimResult, Workload

BATCH_PACKETS = 1 << 17
_MIN_SCALAR = 64
_MAX_SCALAR = 1 << 16
_NEG = np.iinfo(np.int64).min // 4
_INF = np.iinfo(np.int64).max // 4


class _FifoQueue:
    """One station: ``servers`` identical servers, room for ``capacity`` packets (None:
    unbounded), FIFO; state carried across calls (times in ps)."""

    def __init__(self, servers: int, capacity: int | None):
        self.k = servers
        self.cap = capacity
        self.free = np.zeros(servers, dtype=np.int64)
        """Server free times, ascending: the k largest service ends so far."""
        self.recent = np.empty(0, dtype=np.int64)
        """Ascending service ends of admitted packets that may still be in the station
        (kept only with a finite capacity)."""
        self._scalar_run = _MIN_SCALAR

    # -- public ---------------------------------------------------------------------------
    def serve(self, t: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Service ends and the admitted mask for arrivals ``t`` (in station order) with
        services ``s``; ends of dropped packets are -1."""
        n = len(t)
        end = np.full(n, -1, dtype=np.int64)
        adm = np.ones(n, dtype=bool)
        pos = 0
        window = n
        while pos < n:
            q = min(n, pos + window)
            m = self._vector(t[pos:q], s[pos:q], end[pos:q])
            pos += m
            if pos >= n:
                break
            if pos == q:
                window *= 4
                continue
            if m < _MIN_SCALAR:  # the vectorised try bought little: stay scalar longer
                self._scalar_run = min(_MAX_SCALAR, self._scalar_run * 2)
            else:
                self._scalar_run = _MIN_SCALAR
            window = max(1024, 2 * m)
            pos += self._scalar(t, s, end, adm, pos, self._scalar_run)
        return end, adm

    # -- vectorised -----------------------------------------------------------------------
    def _vector(self, t: np.ndarray, s: np.ndarray, out: np.ndarray) -> int:
        """Accept the longest prefix of (t, s) that the no-drop formulas get right; write
        its ends to ``out``, update the state; returns its length."""
        n = len(t)
        if self.k == 1:
            cum = np.cumsum(s)
            x = t - (cum - s)
            np.maximum.accumulate(x, out=x)
            np.maximum(x, self.free[0], out=x)
            d = cum + x
            m = n
            ordered = True
        else:
            d, m = self._chains(t, s)
            if m < n:
                d2, m2 = self._no_wait(t, s)
                if m2 > m:
                    d, m = d2, m2
            ordered = False
        if m and self.cap is not None:
            m = min(m, self._within_capacity(t[:m], d[:m], ordered))
        if m == 0:
            return 0
        out[:m] = d[:m]
        self._accept(t[m - 1], d[:m], ordered)
        return m

    def _chains(self, t: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, int]:
        """Candidate (a): packet i takes the server packet i-k used (the initial servers in
        ascending free time for the first k); valid while server free times stay sorted."""
        n, k = len(t), self.k
        rows = -(-n // k)
        tt = np.full(rows * k, t[-1], dtype=np.int64)
        ss = np.ones(rows * k, dtype=np.int64)
        tt[:n], ss[:n] = t, s
        tt, ss = tt.reshape(rows, k), ss.reshape(rows, k)
        cum = np.cumsum(ss, axis=0)
        x = tt - (cum - ss)
        np.maximum.accumulate(x, axis=0, out=x)
        np.maximum(x, self.free[None, :], out=x)
        d = (cum + x).reshape(-1)[:n]
        f = np.concatenate((self.free, d))
        bad = np.flatnonzero(f[1:] < f[:-1])
        if len(bad) == 0:
            return d, n
        return d, int(min(n, max(0, bad[0] + 2 - k)))

    def _no_wait(self, t: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, int]:
        """Candidate (b): nobody waits; valid while fewer than k packets are in service."""
        d = t + s
        n = len(t)
        busy = (np.arange(n) - np.searchsorted(np.sort(d), t, side="right")
                + (self.k - np.searchsorted(self.free, t, side="right")))
        bad = np.flatnonzero(busy >= self.k)
        return d, int(bad[0]) if len(bad) else n

    def _within_capacity(self, t: np.ndarray, d: np.ndarray, ordered: bool) -> int:
        """Length of the prefix in which every packet found fewer than C packets inside."""
        cap, r, n = self.cap, self.recent, len(t)
        assert cap is not None
        if len(r) + n <= cap:
            return n
        if ordered:  # one server: ends ascending, so the C-th latest end before i decides
            pad = cap - len(r)
            if pad >= 0:
                prev = np.concatenate((np.full(pad, _NEG, dtype=np.int64), r, d[:n - pad]))
            else:
                prev = np.concatenate((r[-pad:], d))[:n]
            bad = np.flatnonzero(prev[:n] > t)
        else:
            inside = (np.arange(n) - np.searchsorted(np.sort(d), t, side="right")
                      + (len(r) - np.searchsorted(r, t, side="right")))
            bad = np.flatnonzero(inside >= cap)
        return int(bad[0]) if len(bad) else n

    def _accept(self, t_last: int, d: np.ndarray, ordered: bool) -> None:
        if self.k == 1:
            self.free[0] = d[-1]
        else:
            both = np.concatenate((self.free, d))
            self.free = np.sort(np.partition(both, len(both) - self.k)[-self.k:])
        if self.cap is not None:
            both = np.concatenate((self.recent, d))
            if not ordered:
                both.sort()
            both = both[np.searchsorted(both, t_last, side="right"):]
            self.recent = both[-self.cap:] if self.k == 1 else both

    # -- scalar ---------------------------------------------------------------------------
    def _scalar(self, t: np.ndarray, s: np.ndarray, end: np.ndarray, adm: np.ndarray,
                pos: int, run: int) -> int:
        """The recurrence packet by packet from ``pos``: at least ``run`` packets, then
        until the station is empty at an arrival, at most ``8 * run``; returns the count."""
        stop = min(len(t), pos + 8 * run)
        tl, sl = t[pos:stop].tolist(), s[pos:stop].tolist()
        cap = self.cap if self.cap is not None else 1 << 62
        ends: list[int] = []
        put = ends.append
        if self.k == 1:
            last = int(self.free[0])
            inside = deque(self.recent.tolist())
            popleft, push = inside.popleft, inside.append
            keep = self.cap is not None
            for j, ti in enumerate(tl):
                while inside and inside[0] <= ti:
                    popleft()
                if not inside and j >= run and last <= ti:
                    break
                if len(inside) >= cap:
                    put(-1)
                    continue
                last = (ti if ti > last else last) + sl[j]
                put(last)
                if keep:
                    push(last)
            self.free[0] = last
            self.recent = np.asarray(inside, dtype=np.int64)
        else:
            free = self.free.tolist()
            heapq.heapify(free)
            inside_h = self.recent.tolist()
            heapq.heapify(inside_h)
            keep = self.cap is not None
            for j, ti in enumerate(tl):
                while inside_h and inside_h[0] <= ti:
                    heapq.heappop(inside_h)
                if j >= run and not inside_h and max(free) <= ti:
                    break
                if len(inside_h) >= cap:
                    put(-1)
                    continue
                f = free[0]
                e = (ti if ti > f else f) + sl[j]
                heapq.heapreplace(free, e)
                put(e)
                if keep:
                    heapq.heappush(inside_h, e)
            self.free = np.sort(np.asarray(free, dtype=np.int64))
            self.recent = np.sort(np.asarray(inside_h, dtype=np.int64))
        count = len(ends)
        block = np.asarray(ends, dtype=np.int64)
        end[pos:pos + count] = block
        adm[pos:pos + count] = block >= 0
        return count


@dataclass
class _Packets:
    """Packets on their way to a station: index, arrival there (ps), its service (ps), and
    the columns later stations need (None once no later station needs them)."""

    idx: np.ndarray
    t: np.ndarray
    s: np.ndarray
    nic_s: np.ndarray | None = None
    delay: np.ndarray | None = None
    to_host: np.ndarray | None = None
    pcie_s: np.ndarray | None = None
    core: np.ndarray | None = None
    host_s: np.ndarray | None = None

    def _cols(self) -> tuple:
        return (self.idx, self.t, self.s, self.nic_s, self.delay, self.to_host, self.pcie_s,
                self.core, self.host_s)

    def take(self, sel: np.ndarray | slice) -> _Packets:
        return _Packets(*(None if a is None else a[sel] for a in self._cols()))

    @staticmethod
    def concat(parts: list[_Packets]) -> _Packets:
        if len(parts) == 1:
            return parts[0]
        cols = zip(*(p._cols() for p in parts), strict=True)
        return _Packets(*(None if c[0] is None else np.concatenate(c) for c in cols))

    def __len__(self) -> int:
        return len(self.idx)


class _Station:
    """A queue plus the packets that have reached it and wait for the horizon."""

    def __init__(self, kind: int, servers: int, capacity: int | None):
        self.kind = kind
        self.queue = _FifoQueue(servers, capacity)
        self.pending: list[_Packets] = []

    def add(self, packets: _Packets) -> None:
        if len(packets):
            self.pending.append(packets)

    def due(self, horizon: int) -> _Packets | None:
        """The pending packets with arrival <= horizon, in (arrival, index) order."""
        if not self.pending:
            return None
        p = _Packets.concat(self.pending)
        self.pending = []
        if len(p) > 1:
            dt = np.diff(p.t)
            if not (dt >= 0).all() or not ((dt > 0) | (np.diff(p.idx) > 0)).all():
                p = p.take(np.lexsort((p.idx, p.t)))
        if horizon < _INF and p.t[-1] > horizon:
            cut = int(np.searchsorted(p.t, horizon, side="right"))
            self.pending.append(p.take(slice(cut, None)))
            p = p.take(slice(0, cut))
        return p if len(p) else None

    def serve(self, res: SimResult, horizon: int) -> tuple[_Packets, np.ndarray] | None:
        """Serve the due packets; mark the dropped ones; the admitted and their ends."""
        p = self.due(horizon)
        if p is None:
            return None
        end, adm = self.queue.serve(p.t, p.s)
        if not adm.all():
            res.lost_at[p.idx[~adm]] = self.kind
            p, end = p.take(adm), end[adm]
        return p, end


def run(workload: Workload, *, batch: int = BATCH_PACKETS,
        progress: Callable[[int], None] | None = None) -> SimResult:
    """Simulate ``workload``; the same results as ``sim.engine_simpy.run``."""
    started = time.perf_counter()
    n = workload.num_packets
    res = SimResult.empty(n, "fast")
    link = _Station(LINK, 1, workload.link.queue)
    nic = _Station(NIC, workload.nic.servers, workload.nic.queue) if workload.nic else None
    pcie = _Station(PCIE, 1, workload.pcie.queue) if workload.pcie else None
    hosts = ([_Station(HOST, 1, workload.host.ring) for _ in range(workload.host.cores)]
             if workload.host else [])
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        horizon = int(workload.arrival_ns[hi]) * 1000 if hi < n else _INF
        sv = workload.services(lo, hi)
        link.add(_Packets(sv.index, sv.arrival_ps, sv.link_ps, sv.nic_ps, sv.nic_delay_ps,
                          sv.to_host, sv.pcie_ps, sv.core, sv.host_ps))
        out = link.serve(res, horizon)
        if out is not None:
            p, end = out
            if nic is not None:
                nic.add(replace(p, t=end, s=p.nic_s, nic_s=None))
            elif hosts:
                _to_cores(replace(p, t=end, s=p.host_s), hosts)
            else:
                res.depart_ps[p.idx] = end
        if nic is not None:
            out = nic.serve(res, horizon)
            if out is not None:
                _leave_nic(*out, pcie, hosts, res)
        if pcie is not None:
            out = pcie.serve(res, horizon)
            if out is not None:
                p, end = out
                _to_cores(replace(p, t=end, s=p.host_s), hosts)
        for h in hosts:
            out = h.serve(res, horizon)
            if out is not None:
                res.depart_ps[out[0].idx] = out[1]
        if progress is not None:
            progress(hi - lo)
    res.wall_s = time.perf_counter() - started
    return res


def _leave_nic(p: _Packets, end: np.ndarray, pcie: _Station | None, hosts: list[_Station],
               res: SimResult) -> None:
    """After the NIC's latency: leave (drop, tx, redirect) or go up to the host."""
    done = end + p.delay
    to_host = p.to_host
    if not to_host.any():
        res.depart_ps[p.idx] = done
        return
    leave = ~to_host
    res.depart_ps[p.idx[leave]] = done[leave]
    up = p.take(to_host)
    up = replace(up, t=done[to_host], delay=None, to_host=None)
    if pcie is not None:
        pcie.add(replace(up, s=up.pcie_s, pcie_s=None))
    else:
        _to_cores(replace(up, s=up.host_s), hosts)


def _to_cores(p: _Packets, hosts: list[_Station]) -> None:
    """RSS: each packet to its core's station."""
    if len(hosts) == 1:
        hosts[0].add(p)
        return
    core = p.core.astype(np.int16)
    order = np.argsort(core, kind="stable")
    counts = np.bincount(core, minlength=len(hosts))
    p = p.take(order)
    start = 0
    for c, cnt in enumerate(counts.tolist()):
        if cnt:
            hosts[c].add(p.take(slice(start, start + cnt)))
        start += cnt
