#!/usr/bin/env python3
"""Unit tests of cpu_trace.Timeline's causes, on hand-made timelines (python3 -m unittest)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpu_trace  # noqa: E402
from cpu_trace import Run, Timeline  # noqa: E402

US = 1000
PROXY, MOCK, CLIENT = 101, 102, 103
OWN = {PROXY, MOCK, CLIENT}


def timeline(runs, wakings=(), ipis=(), ticks=()):
    """A Timeline as SwitchTrace.stop() builds it: each CPU's events in time order."""
    events = {}
    for r in runs:
        events.setdefault(r.cpu, []).append((r.start_ns, "sched_switch"))
    for ns, cpu in ticks:
        events.setdefault(cpu, []).append((ns, "local_timer_entry"))
    for ns, cpu in ipis:
        events.setdefault(cpu, []).append((ns, "ipi_send_cpu"))
    for evs in events.values():
        evs.sort()
    indexed = [(ns, cpu, events[cpu].index((ns, "ipi_send_cpu"))) for ns, cpu in ipis]
    return Timeline(runs, wakings, indexed, events, OWN)


class HeldUp(unittest.TestCase):
    def test_a_quiet_window_has_no_cause(self):
        t = timeline([Run(0, 100 * US, 0, "spillway", PROXY), Run(0, 100 * US, 1, "swapper/1", 0)])
        self.assertEqual(t.held_up(10 * US, 60 * US), {})

    def test_another_task_running_while_the_proxy_waits_to_run(self):
        runs = [Run(0, 3_000 * US, 1, "kdamond.0", 78), Run(3_000 * US, 3_100 * US, 1, "spillway", PROXY)]
        t = timeline(runs, wakings=[(1_000 * US, PROXY)])
        self.assertEqual(t.held_up(900 * US, 3_200 * US), {"kdamond.0": 1})

    def test_another_task_on_a_cpu_nobody_measured_waits_for_does_not_count(self):
        runs = [Run(0, 5_000 * US, 1, "kdamond.0", 78), Run(0, 5_000 * US, 0, "spillway", PROXY)]
        t = timeline(runs)
        self.assertEqual(t.held_up(1_000 * US, 4_000 * US), {})

    def test_another_task_briefly_or_outside_the_wait_does_not_count(self):
        runs = [Run(0, 20 * US, 1, "kworker/1:1", 40), Run(500 * US, 900 * US, 1, "kdamond.0", 78),
                Run(900 * US, 950 * US, 1, "spillway", PROXY)]
        t = timeline(runs, wakings=[(10 * US, PROXY)])
        self.assertEqual(t.held_up(0, 400 * US), {})
        # 40 us of it inside the window: under the 50 us threshold
        self.assertEqual(t.held_up(0, 540 * US), {})

    def test_a_run_that_started_long_before_the_window_still_counts(self):
        runs = [Run(0, 10_000 * US, 1, "tokio-rt-worker", 69), Run(10_000 * US, 10_100 * US, 1, "spillway", PROXY)]
        t = timeline(runs, wakings=[(9_000 * US, PROXY)])
        self.assertEqual(t.held_up(9_000 * US, 9_200 * US), {"tokio-rt-worker": 1})

    def test_woken_onto_an_idle_cpu_that_ran_late(self):
        runs = [Run(0, 3_000 * US, 1, "swapper/1", 0), Run(3_000 * US, 3_100 * US, 1, "spillway", PROXY)]
        t = timeline(runs, wakings=[(100 * US, PROXY)])
        self.assertEqual(t.held_up(0, 3_200 * US), {cpu_trace.IDLE_CPU_LATE: 1})

    def test_woken_onto_a_busy_cpu_is_not_the_idle_cpu_case(self):
        # the proxy waited for the mock, a measured task: that is part of the measurement
        runs = [Run(0, 3_000 * US, 1, "spillway-mock", MOCK), Run(3_000 * US, 3_100 * US, 1, "spillway", PROXY)]
        t = timeline(runs, wakings=[(100 * US, PROXY)])
        self.assertEqual(t.held_up(0, 3_200 * US), {})

    def test_idle_then_another_task_first_is_that_task_not_a_late_cpu(self):
        runs = [Run(0, 300 * US, 1, "swapper/1", 0), Run(300 * US, 3_000 * US, 1, "kdamond.0", 78),
                Run(3_000 * US, 3_100 * US, 1, "spillway", PROXY)]
        t = timeline(runs, wakings=[(100 * US, PROXY)])
        self.assertEqual(t.held_up(0, 3_200 * US), {"kdamond.0": 1})

    def test_woken_while_still_running_did_not_wait(self):
        runs = [Run(0, 200 * US, 0, "spillway", PROXY), Run(200 * US, 3_000 * US, 0, "swapper/0", 0),
                Run(3_000 * US, 3_100 * US, 0, "spillway", PROXY)]
        t = timeline(runs, wakings=[(100 * US, PROXY)])
        self.assertEqual(t.held_up(0, 3_200 * US), {})

    def test_prompt_wakeup_is_not_late(self):
        runs = [Run(0, 130 * US, 1, "swapper/1", 0), Run(130 * US, 200 * US, 1, "spillway", PROXY)]
        t = timeline(runs, wakings=[(100 * US, PROXY)])
        self.assertEqual(t.held_up(0, 300 * US), {})

    def test_busy_cpu_silent_after_an_ipi_until_its_tick(self):
        runs = [Run(0, 4_000 * US, 0, "spillway", PROXY)]
        t = timeline(runs, ipis=[(50 * US, 0)], ticks=[(3_700 * US, 0)])
        self.assertEqual(t.held_up(0, 3_800 * US), {cpu_trace.SENDER_STALLED: 1})

    def test_a_stall_that_begins_at_the_end_of_the_window_does_not_count(self):
        # the proxy sent at 3,000 us; the IPI it sent then (waking its client) stalled it afterwards
        runs = [Run(0, 7_000 * US, 0, "spillway", PROXY)]
        t = timeline(runs, ipis=[(2_900 * US, 0)], ticks=[(6_900 * US, 0)])
        self.assertEqual(t.held_up(0, 3_000 * US), {})
        self.assertEqual(t.held_up(0, 3_500 * US), {cpu_trace.SENDER_STALLED: 1})

    def test_ipi_followed_by_the_sender_carrying_on_is_no_stall(self):
        runs = [Run(0, 80 * US, 0, "spillway", PROXY), Run(80 * US, 4_000 * US, 0, "swapper/0", 0)]
        t = timeline(runs, ipis=[(50 * US, 0)], ticks=[(3_700 * US, 0)])
        self.assertEqual(t.held_up(0, 3_800 * US), {})

    def test_an_idle_cpus_ipi_is_no_stall(self):
        runs = [Run(0, 4_000 * US, 0, "swapper/0", 0)]
        t = timeline(runs, ipis=[(50 * US, 0)], ticks=[(3_700 * US, 0)])
        self.assertEqual(t.held_up(0, 3_800 * US), {})

    def test_several_causes_at_once(self):
        runs = [Run(0, 4_000 * US, 0, "spillway-mock", MOCK), Run(0, 3_750 * US, 1, "kdamond.0", 78),
                Run(3_750 * US, 3_800 * US, 1, "spillway", PROXY)]
        t = timeline(runs, wakings=[(40 * US, PROXY)], ipis=[(50 * US, 0)], ticks=[(3_700 * US, 0)])
        self.assertEqual(t.held_up(0, 3_800 * US), {"kdamond.0": 1, cpu_trace.SENDER_STALLED: 1})

    def test_an_event_in_the_same_microsecond_after_the_ipi_is_the_senders_next(self):
        runs = [Run(0, 4_000 * US, 0, "spillway", PROXY)]
        events = {0: [(0, "sched_switch"), (50 * US, "ipi_send_cpu"), (50 * US, "sched_waking"),
                      (3_700 * US, "local_timer_entry")]}
        t = Timeline(runs, (), [(50 * US, 0, 1)], events, OWN)
        self.assertEqual(t.held_up(0, 3_800 * US), {})

    def test_a_trace_without_the_checks_names_no_such_cause(self):
        runs = [Run(0, 4_000 * US, 0, "spillway", PROXY)]
        events = {0: [(0, "sched_switch"), (50 * US, "ipi_send_cpu"), (3_700 * US, "local_timer_entry")]}
        t = Timeline(runs, (), [(50 * US, 0, 1)], events, OWN, checks=())
        self.assertEqual(t.held_up(0, 3_800 * US), {})


class TraceText(unittest.TestCase):
    """The tracefs line formats the parser expects (as printed by Linux 6.x)."""

    def test_parses_switches_wakings_ipis_and_ticks(self):
        text = "\n".join([
            "  spillway-mock-29844   [000] d..2. 10952.712722: sched_switch: prev_comm=spillway-mock prev_pid=102 "
            "prev_prio=120 prev_state=R ==> next_comm=spillway next_pid=101 next_prio=120",
            "        spillway-29852   [000] d.s5. 10952.712748: sched_waking: comm=python3 pid=103 prio=120 target_cpu=000",
            "        spillway-29852   [000] d.s5. 10952.712754: ipi_send_cpu: cpu=1 callsite=ttwu_queue_wakelist+0x11d/0x150 "
            "callback=generic_smp_call_function_single_interrupt+0x0/0x10",
            "        spillway-29852   [000] d.H3. 10952.716377: local_timer_entry: vector=236",
            "        spillway-29852   [000] d..2. 10952.716441: sched_switch: prev_comm=spillway prev_pid=101 "
            "prev_prio=120 prev_state=R ==> next_comm=ksoftirqd/0 next_pid=14 next_prio=120",
        ])
        kinds = [m.group(4) for m in cpu_trace.EVENT.finditer(text)]
        self.assertEqual(kinds, ["sched_switch", "sched_waking", "ipi_send_cpu", "local_timer_entry", "sched_switch"])
        sw = cpu_trace.SWITCH.match(list(cpu_trace.EVENT.finditer(text))[0].group(5))
        self.assertEqual((sw.group(3), sw.group(4)), ("spillway", "101"))
        wk = cpu_trace.WAKING.match(list(cpu_trace.EVENT.finditer(text))[1].group(5))
        self.assertEqual(wk.group(1), "103")


if __name__ == "__main__":
    unittest.main()
