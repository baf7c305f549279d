"""Tests for txkernel.python.history: storing history, answering requests."""

from __future__ import annotations

import threading

from twisted.trial.unittest import SynchronousTestCase

from txkernel.python.history import History


def history_of(*sources: str, session: int = 1) -> History:
    """A History holding *sources* as executions 1, 2, ..."""
    history = History(session=session)
    for line, source in enumerate(sources, start=1):
        history.store(line, source)
    return history


def ok(*rows: list) -> dict:
    return {"status": "ok", "history": [list(row) for row in rows]}


class StoreTests(SynchronousTestCase):
    def test_default_session_is_one(self) -> None:
        self.assertEqual(History().session, 1)

    def test_store_and_entries_oldest_first(self) -> None:
        history = History()
        history.store(2, "b", "'B'")
        history.store(1, "a")
        self.assertEqual(history.entries(), [(1, "a", None), (2, "b", "'B'")])
        self.assertEqual(len(history), 2)

    def test_set_output_records_the_result(self) -> None:
        history = history_of("1 + 1")
        history.set_output(1, "2")
        self.assertEqual(history.entries(), [(1, "1 + 1", "2")])

    def test_set_output_for_unknown_line_raises(self) -> None:
        self.assertRaises(KeyError, History().set_output, 5, "x")

    def test_storing_a_line_again_replaces_it(self) -> None:
        history = history_of("a")
        history.store(1, "b", "out")
        self.assertEqual(history.entries(), [(1, "b", "out")])

    def test_store_from_threads_while_replying(self) -> None:
        history = History()

        def writer(offset: int) -> None:
            for i in range(500):
                history.store(offset + i, f"x = {i}")

        threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(4)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            self.assertEqual(
                history.reply({"hist_access_type": "tail"})["status"], "ok"
            )
        for thread in threads:
            thread.join()
        self.assertEqual(
            len(history.reply({"hist_access_type": "tail"})["history"]), 2000
        )


class TailTests(SynchronousTestCase):
    def test_tail_gives_last_n_oldest_first(self) -> None:
        history = history_of("a", "b", "c")
        self.assertEqual(
            history.reply({"hist_access_type": "tail", "n": 2}),
            ok([1, 2, "b"], [1, 3, "c"]),
        )

    def test_tail_larger_than_history_gives_everything(self) -> None:
        history = history_of("a")
        self.assertEqual(
            history.reply({"hist_access_type": "tail", "n": 1000}), ok([1, 1, "a"])
        )

    def test_tail_without_n_gives_everything(self) -> None:
        history = history_of("a", "b")
        self.assertEqual(
            history.reply({"hist_access_type": "tail"}), ok([1, 1, "a"], [1, 2, "b"])
        )

    def test_tail_of_zero_is_empty(self) -> None:
        self.assertEqual(
            history_of("a").reply({"hist_access_type": "tail", "n": 0}), ok()
        )

    def test_empty_history_gives_empty_reply(self) -> None:
        self.assertEqual(History().reply({"hist_access_type": "tail", "n": 10}), ok())

    def test_output_pairs_input_with_output(self) -> None:
        history = history_of("x = 1", "x")
        history.set_output(2, "1")
        self.assertEqual(
            history.reply({"hist_access_type": "tail", "n": 5, "output": True}),
            ok([1, 1, ["x = 1", None]], [1, 2, ["x", "1"]]),
        )

    def test_rows_carry_the_session_number(self) -> None:
        history = history_of("a", session=7)
        self.assertEqual(
            history.reply({"hist_access_type": "tail", "n": 1}), ok([7, 1, "a"])
        )

    def test_raw_is_accepted_and_changes_nothing(self) -> None:
        history = history_of("%magic")
        for raw in (True, False):
            self.assertEqual(
                history.reply({"hist_access_type": "tail", "raw": raw}),
                ok([1, 1, "%magic"]),
            )


class RangeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.history = history_of("a", "b", "c", "d", session=3)

    def request(self, **fields: object) -> dict:
        return self.history.reply({"hist_access_type": "range", **fields})

    def test_range_stop_is_exclusive(self) -> None:
        self.assertEqual(
            self.request(session=0, start=2, stop=4), ok([3, 2, "b"], [3, 3, "c"])
        )

    def test_range_without_stop_goes_to_the_end(self) -> None:
        self.assertEqual(self.request(start=3), ok([3, 3, "c"], [3, 4, "d"]))
        self.assertEqual(self.request(start=3, stop=None), ok([3, 3, "c"], [3, 4, "d"]))

    def test_range_without_start_or_stop_gives_everything(self) -> None:
        self.assertEqual(len(self.request()["history"]), 4)

    def test_range_by_current_session_number(self) -> None:
        self.assertEqual(self.request(session=3, start=4), ok([3, 4, "d"]))

    def test_range_of_previous_session_is_empty(self) -> None:
        self.assertEqual(self.request(session=-1, start=1), ok())

    def test_range_of_other_session_is_empty(self) -> None:
        self.assertEqual(self.request(session=2), ok())

    def test_negative_start_counts_from_the_end(self) -> None:
        self.assertEqual(self.request(start=-2), ok([3, 3, "c"], [3, 4, "d"]))

    def test_negative_stop_counts_from_the_end(self) -> None:
        self.assertEqual(self.request(start=1, stop=-2), ok([3, 1, "a"], [3, 2, "b"]))

    def test_range_with_output(self) -> None:
        self.history.set_output(1, "'A'")
        self.assertEqual(
            self.request(start=1, stop=2, output=True), ok([3, 1, ["a", "'A'"]])
        )


class SearchTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.history = history_of(
            "import os", "x = 1", "import sys", "x = 1", "print(x)"
        )

    def request(self, **fields: object) -> dict:
        return self.history.reply({"hist_access_type": "search", **fields})

    def test_pattern_matches_the_whole_input(self) -> None:
        self.assertEqual(
            self.request(pattern="import *"),
            ok([1, 1, "import os"], [1, 3, "import sys"]),
        )
        self.assertEqual(self.request(pattern="sys"), ok())

    def test_stars_find_substrings(self) -> None:
        self.assertEqual(self.request(pattern="*sys*"), ok([1, 3, "import sys"]))

    def test_question_mark_matches_one_character(self) -> None:
        self.assertEqual(self.request(pattern="import o?"), ok([1, 1, "import os"]))

    def test_search_is_case_sensitive(self) -> None:
        self.assertEqual(self.request(pattern="IMPORT*"), ok())

    def test_star_matches_across_lines(self) -> None:
        self.history.store(6, "def f():\n    return 1")
        self.assertEqual(
            self.request(pattern="def*return*"), ok([1, 6, "def f():\n    return 1"])
        )

    def test_missing_pattern_matches_everything(self) -> None:
        self.assertEqual(len(self.request()["history"]), 5)

    def test_unique_keeps_latest_occurrence(self) -> None:
        self.assertEqual(self.request(pattern="x*", unique=True), ok([1, 4, "x = 1"]))
        self.assertEqual(
            self.request(pattern="*", unique=True),
            ok(
                [1, 1, "import os"],
                [1, 3, "import sys"],
                [1, 4, "x = 1"],
                [1, 5, "print(x)"],
            ),
        )

    def test_without_unique_duplicates_are_kept(self) -> None:
        self.assertEqual(
            self.request(pattern="x*"), ok([1, 2, "x = 1"], [1, 4, "x = 1"])
        )

    def test_n_keeps_last_matches(self) -> None:
        self.assertEqual(
            self.request(pattern="*", n=2), ok([1, 4, "x = 1"], [1, 5, "print(x)"])
        )

    def test_n_none_keeps_all_matches(self) -> None:
        self.assertEqual(len(self.request(pattern="*", n=None)["history"]), 5)

    def test_search_with_output(self) -> None:
        self.history.set_output(5, None)
        self.assertEqual(
            self.request(pattern="print*", output=True),
            ok([1, 5, ["print(x)", None]]),
        )


class BadRequestTests(SynchronousTestCase):
    def test_unknown_access_type_gives_ok_and_empty(self) -> None:
        self.assertEqual(history_of("a").reply({"hist_access_type": "nope"}), ok())

    def test_missing_access_type_gives_ok_and_empty(self) -> None:
        self.assertEqual(history_of("a").reply({}), ok())

    def test_wrong_field_type_gives_error_reply(self) -> None:
        reply = history_of("a").reply({"hist_access_type": "tail", "n": "5"})
        self.assertEqual(reply["status"], "error")
        self.assertEqual(reply["ename"], "TypeError")
        self.assertIn("n", reply["evalue"])
        self.assertEqual(reply["traceback"], [])

    def test_bool_is_not_a_line_number(self) -> None:
        reply = history_of("a").reply({"hist_access_type": "range", "start": True})
        self.assertEqual(reply["status"], "error")

    def test_non_bool_output_flag_gives_error_reply(self) -> None:
        reply = history_of("a").reply({"hist_access_type": "tail", "output": "yes"})
        self.assertEqual(reply["status"], "error")

    def test_non_str_pattern_gives_error_reply(self) -> None:
        reply = history_of("a").reply({"hist_access_type": "search", "pattern": 3})
        self.assertEqual(reply["status"], "error")
