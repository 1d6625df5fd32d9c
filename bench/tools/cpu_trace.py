#!/usr/bin/env python3
"""What else happened on the CPUs during a measurement (Python 3 stdlib; root, tracefs).

A proxy's delay for one event is tens of microseconds; one disturbance on the CPU the proxy runs
on adds milliseconds and becomes a suite's p99. This records, in a tracefs instance of its own
(read once at the end, so nothing wakes during the measurement), the kernel's context switches,
the wake-ups of the measured threads, the IPIs CPUs send each other and the local timer ticks,
and answers, for a window of time, what held it up:

  - another task's run: while a measured thread waited to run, a task that is neither idle nor
    measured held a CPU for a while (on a non-preemptible kernel a kernel thread runs until it
    yields);
  - an idle CPU that ran late: a measured thread was woken, the CPU it then ran on stayed idle
    until it ran there, and that was much later. Nothing in the machine held that CPU: its virtual
    CPU was not running (the hypervisor's doing);
  - a stalled sender: a busy CPU sent another CPU an IPI (to wake a task there) and then recorded
    nothing (no context switch, no wake-up of a measured thread, no IPI) until its own next timer
    tick. The trace cannot tell that from one task running that long without a pause; in the
    case traced in detail (bench/RESULTS.md) the sender was inside a send call's softirq, and the
    hypervisor had run the woken virtual CPU and left the sender waiting.

    trace = SwitchTrace()
    trace.start(own_tids)      # False (and trace.note says why) without root or tracefs
    ...measure...
    timeline = trace.stop()
    timeline.held_up(start_ns, end_ns)   # {cause: 1} for the window, {} when nothing did
Times are CLOCK_REALTIME nanoseconds, like the packets' SO_TIMESTAMPNS.
"""
import bisect
import collections
import os
import re
import subprocess
import time

TRACEFS = "/sys/kernel/tracing"
INSTANCE = "spillway-bench"
EVENTS = ("sched/sched_switch", "sched/sched_waking", "ipi/ipi_send_cpu", "irq_vectors/local_timer_entry")

INTRUSION_NS = 50_000      # another task's run of at least this much inside the window
LATE_NS = 500_000          # a wake-up answered at least this late
IDLE_CPU_LATE = "idle CPU ran late"
SENDER_STALLED = "CPU stalled after an IPI until its next tick"

Run = collections.namedtuple("Run", "start_ns end_ns cpu comm tid")

EVENT = re.compile(r"\[(\d+)\]\s+\S+\s+(\d+)\.(\d+): (sched_switch|sched_waking|ipi_send_cpu|local_timer_entry): (.*)")
SWITCH = re.compile(r"prev_comm=(.*?) prev_pid=(\d+) .*==> next_comm=(.*?) next_pid=(\d+) ")
WAKING = re.compile(r"comm=.*? pid=(\d+) ")


def _write(directory, name, value):
    with open(os.path.join(directory, name), "w") as f:
        f.write(value)


class Timeline:
    """Who held each CPU when, the measured threads' wake-ups, and every CPU's recorded events."""

    def __init__(self, runs=(), wakings=(), ipis=(), cpu_events=None, own_tids=frozenset(),
                 checks=(IDLE_CPU_LATE, SENDER_STALLED)):
        self.checks = set(checks)            # the causes this trace has the events for
        self.foreign = sorted(r for r in runs if r.tid != 0 and r.tid not in own_tids)
        self.foreign_starts = [r.start_ns for r in self.foreign]
        self.longest = max((r.end_ns - r.start_ns for r in self.foreign), default=0)
        self.by_cpu, self.by_tid = {}, {}
        for r in sorted(runs):
            self.by_cpu.setdefault(r.cpu, []).append(r)
            self.by_tid.setdefault(r.tid, []).append(r)
        self.cpu_starts = {cpu: [r.start_ns for r in rs] for cpu, rs in self.by_cpu.items()}
        self.tid_starts = {tid: [r.start_ns for r in rs] for tid, rs in self.by_tid.items()}
        self.wakings = sorted(wakings)       # (ns, tid)
        # cpu -> [(ns, kind)] in the order the CPU recorded them (microsecond stamps tie often)
        self.cpu_events = {cpu: list(evs) for cpu, evs in (cpu_events or {}).items()}
        self.ipis = sorted(ipis)             # (ns, sending cpu, index of the IPI in cpu_events[cpu])

    def held_up(self, start_ns, end_ns):
        """{cause: 1} for each way the window [start_ns, end_ns] was held up (module docstring). A
        disturbance counts only for the part of it inside the window."""
        waits = self._waits(start_ns, end_ns)
        causes = {comm: 1 for comm in self._intruders(waits)}
        if IDLE_CPU_LATE in self.checks and self._late_wakeup(start_ns, end_ns):
            causes[IDLE_CPU_LATE] = 1
        if SENDER_STALLED in self.checks and self._stalled_sender(start_ns, end_ns):
            causes[SENDER_STALLED] = 1
        return causes

    def _holder(self, cpu, ns):
        rs = self.by_cpu.get(cpu, [])
        i = bisect.bisect_right(self.cpu_starts.get(cpu, []), ns) - 1
        return rs[i] if i >= 0 and rs[i].end_ns > ns else None

    def _running(self, tid, ns):
        rs = self.by_tid.get(tid, [])
        i = bisect.bisect_right(self.tid_starts.get(tid, []), ns) - 1
        return i >= 0 and rs[i].end_ns > ns

    def _waits(self, start_ns, end_ns):
        """[(from, to, the run that ended the wait)]: measured threads woken inside the window and
        not yet running, clipped to the window."""
        waits = []
        i = bisect.bisect_left(self.wakings, (start_ns, -1))
        for ns, tid in self.wakings[i:]:
            if ns >= end_ns:
                break
            if self._running(tid, ns):
                continue   # woken while it still held a CPU: it did not wait
            starts = self.tid_starts.get(tid, [])
            j = bisect.bisect_left(starts, ns)
            ran = self.by_tid[tid][j] if j < len(starts) else None
            waits.append((ns, min(ran.start_ns if ran else end_ns, end_ns), ran))
        return waits

    def _intruders(self, waits):
        """Other tasks' runs of at least INTRUSION_NS while a measured thread waited to run."""
        found = set()
        for w0, w1, _ in waits:
            i = bisect.bisect_left(self.foreign_starts, w0 - self.longest)
            while i < len(self.foreign) and self.foreign[i].start_ns < w1:
                r = self.foreign[i]
                if min(r.end_ns, w1) - max(r.start_ns, w0) >= INTRUSION_NS:
                    found.add(r.comm)
                i += 1
        return found

    def _late_wakeup(self, start_ns, end_ns):
        """A measured thread woken onto a CPU the idle task held from the wake-up until the thread
        ran there, at least LATE_NS later (within the window)."""
        for w0, w1, ran in self._waits(start_ns, end_ns):
            if ran is None or w1 - w0 < LATE_NS:
                continue
            held = self._holder(ran.cpu, w0)
            if held is not None and held.tid == 0 and held.end_ns >= ran.start_ns:
                return True
        return False

    def _stalled_sender(self, start_ns, end_ns):
        """A busy CPU that sent an IPI and then recorded nothing until its own timer tick, at least
        LATE_NS later (within the window)."""
        i = bisect.bisect_left(self.ipis, (start_ns, -1, -1))
        for ns, cpu, k in self.ipis[i:]:
            if ns >= end_ns:
                return False
            held = self._holder(cpu, ns)
            if held is None or held.tid == 0:
                continue   # an idle CPU's IPI: nothing was waiting to run on the sender
            evs = self.cpu_events.get(cpu, [])
            if k + 1 < len(evs) and evs[k + 1][1] == "local_timer_entry" and min(evs[k + 1][0], end_ns) - ns >= LATE_NS:
                return True
        return False


class SwitchTrace:
    def __init__(self):
        self.dir = None
        self.note = "not started"
        self.lost = 0
        self.own = frozenset()
        self.checks = set()

    def start(self, own_tids, buffer_kb=32768):
        self.own = frozenset(own_tids)
        try:
            if not os.path.isdir(os.path.join(TRACEFS, "instances")):
                subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True, capture_output=True)
            d = os.path.join(TRACEFS, "instances", INSTANCE)
            if os.path.isdir(d):
                os.rmdir(d)   # left behind by an interrupted run
            os.mkdir(d)
            self.dir = d
            _write(d, "trace_clock", "mono")   # CLOCK_MONOTONIC, converted to the packets' clock at the end
            _write(d, "buffer_size_kb", str(buffer_kb))
            if self.own:
                _write(d, "events/sched/sched_waking/filter", " || ".join(f"pid == {t}" for t in sorted(self.own)))
            _write(d, "events/sched/sched_switch/enable", "1")   # without it there is no trace
            missing = []
            for event in EVENTS[1:]:   # without one of these, only the check that needs it is off
                try:
                    _write(d, f"events/{event}/enable", "1")
                except OSError:
                    missing.append(event)
            self.checks = {IDLE_CPU_LATE, SENDER_STALLED}
            if "sched/sched_waking" in missing:
                self.checks.clear()   # the other-task check also needs to know who was waiting
            if "ipi/ipi_send_cpu" in missing or "irq_vectors/local_timer_entry" in missing:
                self.checks.discard(SENDER_STALLED)
            self.note = "ok" + (f" (no {', '.join(missing)} on this kernel)" if missing else "")
            return True
        except (OSError, subprocess.CalledProcessError) as e:
            self.note = f"no scheduler trace: {e}"
            self.close()
            return False

    def stop(self):
        """The Timeline recorded since start() (empty when not tracing)."""
        if self.dir is None:
            return Timeline(own_tids=self.own)
        _write(self.dir, "tracing_on", "0")
        offset = time.time_ns() - time.monotonic_ns()   # the trace's CLOCK_MONOTONIC -> CLOCK_REALTIME
        with open(os.path.join(self.dir, "trace")) as f:
            text = f.read()
        for cpu in os.listdir(os.path.join(self.dir, "per_cpu")):
            with open(os.path.join(self.dir, "per_cpu", cpu, "stats")) as f:
                for line in f:
                    if line.startswith("overrun:"):
                        self.lost += int(line.split()[1])
        self.close()
        runs, wakings, ipis, cpu_events = [], [], [], {}
        current = {}   # cpu -> (comm, tid, start_ns) of the task that holds it
        for m in EVENT.finditer(text):
            cpu, kind, rest = int(m.group(1)), m.group(4), m.group(5)
            ns = int(m.group(2)) * 1_000_000_000 + int(m.group(3).ljust(9, "0")[:9]) + offset
            events = cpu_events.setdefault(cpu, [])
            events.append((ns, kind))
            if kind == "sched_switch":
                s = SWITCH.match(rest)
                if s is None:
                    continue
                held = current.get(cpu)
                if held is not None:
                    runs.append(Run(held[2], ns, cpu, held[0], held[1]))
                current[cpu] = (s.group(3), int(s.group(4)), ns)
            elif kind == "sched_waking":
                w = WAKING.match(rest)
                if w is not None:
                    wakings.append((ns, int(w.group(1))))
            elif kind == "ipi_send_cpu":
                ipis.append((ns, cpu, len(events) - 1))
        if self.lost:
            # The ring overwrote its oldest events: the early streams' causes are unknown, and
            # reporting them as "not held up" would be wrong. No classification at all.
            self.note = f"lost {self.lost} events (buffer full): no causes named"
            return Timeline(own_tids=self.own, checks=())
        return Timeline(runs, wakings, ipis, cpu_events, self.own, self.checks)

    def close(self):
        if self.dir is not None:
            try:
                _write(self.dir, "tracing_on", "0")
                os.rmdir(self.dir)
            except OSError as e:
                self.note += f"; could not remove {self.dir}: {e}"
            self.dir = None


def threads_of(pids):
    """Thread ids of the given processes (sched_switch names threads, not processes)."""
    tids = set()
    for pid in pids:
        try:
            tids.update(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return tids
