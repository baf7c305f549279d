"""Tests for txkernel.python.completeness (``is_complete_request`` answers)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from txkernel.python.completeness import is_complete

COMPLETE = {"status": "complete"}
INVALID = {"status": "invalid"}


def incomplete(indent: str = "") -> dict[str, str]:
    return {"status": "incomplete", "indent": indent}


class CompleteCodeTests(SynchronousTestCase):
    def test_simple_statement_is_complete(self) -> None:
        self.assertEqual(is_complete("x = 1"), COMPLETE)

    def test_empty_and_blank_code_is_complete(self) -> None:
        self.assertEqual(is_complete(""), COMPLETE)
        self.assertEqual(is_complete("  \n\n"), COMPLETE)

    def test_several_statements_are_complete(self) -> None:
        self.assertEqual(is_complete("x = 1\ny = 2\nprint(x + y)"), COMPLETE)

    def test_closed_brackets_spanning_lines_are_complete(self) -> None:
        self.assertEqual(is_complete("x = [1,\n     2]"), COMPLETE)

    def test_single_line_block_is_complete(self) -> None:
        self.assertEqual(is_complete("if True: print(1)"), COMPLETE)
        self.assertEqual(is_complete("@staticmethod\ndef f(): pass"), COMPLETE)

    def test_block_followed_by_a_blank_line_is_complete(self) -> None:
        self.assertEqual(is_complete("def f():\n    return 1\n\n"), COMPLETE)
        self.assertEqual(is_complete("def f():\n    return 1\n"), COMPLETE)

    def test_block_followed_by_a_whitespace_only_line_is_complete(self) -> None:
        # What a console sends when Enter is pressed on an auto-indented line.
        self.assertEqual(is_complete("def f():\n    return 1\n    "), COMPLETE)

    def test_statement_after_a_block_is_complete(self) -> None:
        self.assertEqual(
            is_complete("for i in range(3):\n    pass\nprint(i)"), COMPLETE
        )

    def test_windows_newlines_are_accepted(self) -> None:
        self.assertEqual(is_complete("def f():\r\n    return 1\r\n\r\n"), COMPLETE)

    def test_top_level_await_is_complete(self) -> None:
        self.assertEqual(is_complete("await something()"), COMPLETE)

    def test_help_requests_are_complete(self) -> None:
        self.assertEqual(is_complete("print?"), COMPLETE)
        self.assertEqual(is_complete("??os.path"), COMPLETE)


class IncompleteCodeTests(SynchronousTestCase):
    def test_block_header_asks_for_an_indented_body(self) -> None:
        self.assertEqual(is_complete("for i in range(3):"), incomplete("    "))

    def test_header_with_a_trailing_comment_still_indents(self) -> None:
        self.assertEqual(is_complete("while True:  # forever"), incomplete("    "))

    def test_nested_header_adds_one_level(self) -> None:
        self.assertEqual(is_complete("def f():\n    if x:"), incomplete("        "))

    def test_header_without_body_after_a_blank_line_is_still_incomplete(self) -> None:
        self.assertEqual(is_complete("if x:\n"), incomplete("    "))

    def test_block_body_waits_for_a_blank_line(self) -> None:
        self.assertEqual(is_complete("def f():\n    return 1"), incomplete("    "))

    def test_block_with_else_waits_for_a_blank_line(self) -> None:
        code = "if x:\n    a = 1\nelse:\n    a = 2"
        self.assertEqual(is_complete(code), incomplete("    "))

    def test_match_statement_waits_for_a_blank_line(self) -> None:
        code = "match x:\n    case 1:\n        pass"
        self.assertEqual(is_complete(code), incomplete("        "))

    def test_comment_line_keeps_its_indentation(self) -> None:
        self.assertEqual(is_complete("for x in y:\n    # later\n"), incomplete("    "))

    def test_decorator_alone_is_incomplete(self) -> None:
        self.assertEqual(is_complete("@property"), incomplete())

    def test_unclosed_brackets_are_incomplete(self) -> None:
        self.assertEqual(is_complete("print(1,"), incomplete())
        self.assertEqual(is_complete("x = {1: [2,"), incomplete())

    def test_unclosed_bracket_keeps_the_previous_line_indent(self) -> None:
        self.assertEqual(is_complete("if x:\n    y = (1,\n"), incomplete("    "))

    def test_colon_inside_brackets_does_not_indent(self) -> None:
        self.assertEqual(is_complete("d = {1:"), incomplete())

    def test_unclosed_triple_quoted_string_is_incomplete(self) -> None:
        self.assertEqual(is_complete('s = """abc'), incomplete())
        self.assertEqual(is_complete("s = '''a:\n  b:"), incomplete("  "))

    def test_string_continued_with_a_backslash_is_incomplete(self) -> None:
        self.assertEqual(is_complete('s = "abc\\'), incomplete())

    def test_trailing_backslash_is_incomplete(self) -> None:
        self.assertEqual(is_complete("x = 1 + \\"), incomplete())

    def test_tab_indentation_is_kept(self) -> None:
        self.assertEqual(is_complete("if x:\n\tpass"), incomplete("\t"))


class InvalidCodeTests(SynchronousTestCase):
    def test_syntax_errors_are_invalid(self) -> None:
        self.assertEqual(is_complete("1 +* 2"), INVALID)
        self.assertEqual(is_complete("x = )"), INVALID)

    def test_unterminated_single_line_string_is_invalid(self) -> None:
        # No further line can ever close it, as in the Python console.
        self.assertEqual(is_complete('x = "abc'), INVALID)

    def test_bad_indentation_is_invalid(self) -> None:
        self.assertEqual(is_complete("if x:\n  a\n b"), INVALID)
        self.assertEqual(is_complete("  x = 1"), INVALID)

    def test_compile_time_errors_are_invalid(self) -> None:
        self.assertEqual(is_complete("return 1"), INVALID)

    def test_null_bytes_are_invalid(self) -> None:
        self.assertEqual(is_complete("x = 1\0"), INVALID)

    def test_error_before_an_open_bracket_is_invalid(self) -> None:
        self.assertEqual(is_complete("x = = (1,"), INVALID)

    def test_almost_help_requests_are_invalid(self) -> None:
        self.assertEqual(is_complete("x = obj?"), INVALID)


class RobustnessTests(SynchronousTestCase):
    def test_deeply_nested_code_gets_an_answer(self) -> None:
        reply = is_complete("(" * 5000)
        self.assertIn(reply["status"], {"incomplete", "invalid", "unknown"})
