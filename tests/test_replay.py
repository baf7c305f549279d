"""The replay guard's history: what it remembers, forgets, and holds."""

from __future__ import annotations

import random
from collections import deque

from twisted.trial.unittest import TestCase

from txkernel.replay import ReplayHistory, fingerprint


def signature(key: int) -> bytes:
    """A hex signature whose fingerprint is ``key``."""
    return b"%016x" % key + b"0" * 48


class ReplayHistoryTests(TestCase):
    def test_remembered_signatures_are_found_and_others_are_not(self) -> None:
        history = ReplayHistory(100)
        for key in range(1, 51):
            history.remember(signature(key * 7919))
        self.assertEqual(len(history), 50)
        self.assertTrue(all(signature(k * 7919) in history for k in range(1, 51)))
        self.assertFalse(any(signature(k * 7919 + 1) in history for k in range(1, 51)))

    def test_once_full_the_oldest_is_forgotten_first(self) -> None:
        history = ReplayHistory(4)
        for key in range(1, 7):
            history.remember(signature(key))
        self.assertEqual(len(history), 4)
        self.assertEqual([k for k in range(1, 7) if signature(k) in history], [3, 4, 5, 6])

    def test_remembering_twice_keeps_one_entry(self) -> None:
        history = ReplayHistory(4)
        history.remember(signature(9))
        history.remember(signature(9))
        self.assertEqual(len(history), 1)

    def test_a_zero_fingerprint_is_kept_too(self) -> None:
        history = ReplayHistory(4)
        history.remember(signature(0))
        self.assertIn(signature(0), history)
        self.assertEqual(fingerprint(signature(0)), 1)

    def test_it_agrees_with_a_plain_set_under_colliding_keys(self) -> None:
        # Capacity 8 (a table of 16 slots); keys that share their low bits make
        # long probe runs, so deleting the oldest shifts entries back across
        # runs and across the end of the table.
        rng = random.Random(14)
        history = ReplayHistory(8)
        kept: deque[int] = deque()
        for _ in range(5000):
            key = rng.choice((0, 15, 14, 1)) + 16 * rng.randrange(1, 40)
            if key not in kept:
                if len(kept) == 8:
                    kept.popleft()
                kept.append(key)
            history.remember(signature(key))
            self.assertEqual(len(history), len(kept))
            probes = set(kept) | {rng.choice((0, 15)) + 16 * rng.randrange(1, 40)}
            for probe in probes:
                self.assertEqual(signature(probe) in history, probe in kept, probe)
