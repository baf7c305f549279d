"""Tests for txkernel.python.inspection (Shift-Tab help and ``obj?`` cells)."""

from __future__ import annotations

import inspect as stdlib_inspect
import os
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from txkernel.python.inspection import help_text, inspect, parse_help_request


def add(a: int, b: int = 1) -> int:
    """Add two numbers."""
    return a + b


def undocumented(x):  # type: ignore[no-untyped-def]
    return x


class Widget:
    """A thing with parts."""

    def __init__(self, name: str, size: int = 3) -> None:
        self.name = name
        self.calls: list[str] = []

    @property
    def weight(self) -> int:
        """How heavy the widget is."""
        self.calls.append("weight")
        return 1

    def build(self) -> Widget:
        self.calls.append("build")
        return self


HERE = stdlib_inspect.getsourcefile(add)


def _namespace(**extra: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"add": add, "os": os, "Widget": Widget}
    namespace.update(extra)
    return namespace


def _text(
    code: str, cursor_pos: int | None = None, detail_level: int = 0, **extra: Any
) -> str:
    """The text/plain of a found inspect_reply."""
    position = len(code) if cursor_pos is None else cursor_pos
    reply = inspect(code, position, detail_level, _namespace(**extra))
    assert reply["found"], f"nothing found in {code!r}"
    return reply["data"]["text/plain"]


class InspectReplyTests(SynchronousTestCase):
    def test_found_reply_has_plain_text_data(self) -> None:
        reply = inspect("add", 3, 0, _namespace())
        self.assertEqual(reply["status"], "ok")
        self.assertTrue(reply["found"])
        self.assertEqual(list(reply["data"]), ["text/plain"])
        self.assertEqual(reply["metadata"], {})

    def test_unknown_name_is_not_found_with_empty_data(self) -> None:
        reply = inspect("missing_name", 12, 0, _namespace())
        self.assertEqual(
            reply, {"status": "ok", "found": False, "data": {}, "metadata": {}}
        )

    def test_cursor_out_of_range_is_not_found(self) -> None:
        self.assertFalse(inspect("add", 99, 0, _namespace())["found"])

    def test_name_just_before_the_cursor_is_inspected(self) -> None:
        self.assertIn("Signature: add(a: int, b: int = 1) -> int", _text("x = add"))

    def test_name_under_the_cursor_is_inspected_whole(self) -> None:
        code = "x = os.path.join"
        text = _text(code, code.index("pa") + 1)
        self.assertIn("Type:      module", text)
        self.assertIn("posixpath", text)

    def test_trailing_spaces_before_the_cursor_are_skipped(self) -> None:
        self.assertIn("add(a", _text("add  "))

    def test_call_arguments_inspect_the_callee(self) -> None:
        text = _text("print(1, ")
        self.assertIn("Type:      builtin_function_or_method", text)
        self.assertIn("Signature: print(", text)

    def test_name_at_the_cursor_wins_over_the_callee(self) -> None:
        self.assertIn("Add two numbers.", _text("print(add"))

    def test_unknown_argument_falls_back_to_the_callee(self) -> None:
        self.assertIn("Add two numbers.", _text("add(not_defined"))

    def test_innermost_open_call_is_inspected(self) -> None:
        self.assertIn("Add two numbers.", _text("print(add(1, "))
        self.assertIn("Signature: print(", _text("print(add(1), "))

    def test_call_spanning_lines_is_inspected(self) -> None:
        self.assertIn("Add two numbers.", _text("y = add(\n    1,\n    "))

    def test_brackets_inside_strings_and_comments_are_ignored(self) -> None:
        self.assertIn("Add two numbers.", _text('add(")", '))
        self.assertIn("Add two numbers.", _text("add(1,  # )\n  "))

    def test_detail_level_0_has_no_source(self) -> None:
        self.assertNotIn("Source:", _text("add"))

    def test_detail_level_1_adds_the_source(self) -> None:
        text = _text("add", detail_level=1)
        self.assertIn("Source:\ndef add(a: int, b: int = 1) -> int:", text)
        self.assertIn("Docstring:\nAdd two numbers.", text)

    def test_properties_are_not_run(self) -> None:
        widget = Widget("w")
        text = _text("w.weight", w=widget)
        self.assertIn("Type:      property", text)
        self.assertIn("How heavy the widget is.", text)
        self.assertEqual(widget.calls, [])

    def test_calls_are_not_evaluated(self) -> None:
        widget = Widget("w")
        reply = inspect("w.build().name", 14, 0, _namespace(w=widget))
        self.assertFalse(reply["found"])
        self.assertEqual(widget.calls, [])


class HelpTextTests(SynchronousTestCase):
    def test_function_layout(self) -> None:
        self.assertEqual(
            help_text("add", _namespace(), 0),
            "Type:      function\n"
            "Signature: add(a: int, b: int = 1) -> int\n"
            f"File:      {HERE}\n"
            "Docstring:\n"
            "Add two numbers.",
        )

    def test_function_layout_with_source(self) -> None:
        self.assertEqual(
            help_text("add", _namespace(), 1),
            "Type:      function\n"
            "Signature: add(a: int, b: int = 1) -> int\n"
            f"File:      {HERE}\n"
            "Docstring:\n"
            "Add two numbers.\n"
            "Source:\n"
            "def add(a: int, b: int = 1) -> int:\n"
            '    """Add two numbers."""\n'
            "    return a + b",
        )

    def test_missing_docstring_is_reported(self) -> None:
        text = help_text("f", {"f": undocumented}, 0)
        assert text is not None
        self.assertIn("Docstring:\n<no docstring>", text)

    def test_class_shows_its_constructor_signature(self) -> None:
        text = help_text("Widget", _namespace(), 0)
        assert text is not None
        self.assertIn("Type:      type\n", text)
        self.assertIn("Signature: Widget(name: str, size: int = 3) -> None\n", text)
        self.assertIn("Docstring:\nA thing with parts.", text)

    def test_builtin_containers_show_value_and_length(self) -> None:
        text = help_text("items", {"items": [1, 2, 3]}, 0)
        assert text is not None
        self.assertTrue(
            text.startswith("Type:      list\nValue:     [1, 2, 3]\nLength:    3\n")
        )

    def test_long_values_are_abbreviated(self) -> None:
        text = help_text("items", {"items": list(range(1000))}, 0)
        assert text is not None
        self.assertIn("Length:    1000", text)
        self.assertLess(len(text.splitlines()[1]), 200)

    def test_user_objects_do_not_show_their_repr(self) -> None:
        text = help_text("w", {"w": Widget("w")}, 0)
        assert text is not None
        self.assertNotIn("Value:", text)
        self.assertIn("Type:      Widget", text)

    def test_dotted_attributes_and_subscripts_are_found(self) -> None:
        text = help_text("os.path.join", _namespace(), 0)
        assert text is not None
        self.assertIn("Signature: join(", text)
        self.assertIn("File:      ", text)
        self.assertIsNotNone(help_text('tools["add"]', {"tools": {"add": add}}, 0))

    def test_builtins_are_found(self) -> None:
        text = help_text("len", {}, 0)
        assert text is not None
        self.assertIn("Signature: len(obj, /)", text)

    def test_unknown_names_are_none(self) -> None:
        self.assertIsNone(help_text("missing", {}, 0))
        self.assertIsNone(help_text("os.missing", _namespace(), 0))

    def test_expressions_other_than_names_are_none(self) -> None:
        widget = Widget("w")
        self.assertIsNone(help_text("w.build()", {"w": widget}, 0))
        self.assertIsNone(help_text("1 + 2", {}, 0))
        self.assertEqual(widget.calls, [])


class ParseHelpRequestTests(SynchronousTestCase):
    def test_question_marks_select_the_detail_level(self) -> None:
        self.assertEqual(parse_help_request("obj?"), ("obj", 0))
        self.assertEqual(parse_help_request("obj??"), ("obj", 1))
        self.assertEqual(parse_help_request("?obj"), ("obj", 0))
        self.assertEqual(parse_help_request("??obj"), ("obj", 1))

    def test_dotted_names_and_surrounding_whitespace(self) -> None:
        self.assertEqual(parse_help_request("  os.path.join?? \n"), ("os.path.join", 1))
        self.assertEqual(parse_help_request("\n? os.path\n"), ("os.path", 0))

    def test_other_cells_are_not_help_requests(self) -> None:
        for code in ["obj", "?", "??", "?obj?", "obj???", "x = obj?", "f(x)?", "a?\nb"]:
            self.assertIsNone(parse_help_request(code), code)


class ResilienceTests(SynchronousTestCase):
    def test_objects_that_break_introspection_still_get_help(self) -> None:
        class Hostile:
            @property
            def __doc__(self) -> str:  # type: ignore[override]
                raise RuntimeError("no docs for you")

        text = help_text("h", {"h": Hostile()}, 1)
        assert text is not None
        self.assertIn("Type:      Hostile", text)
        self.assertIn("Docstring:\n<no docstring>", text)

    def test_elements_whose_repr_fails_do_not_break_help(self) -> None:
        class BadRepr:
            def __repr__(self) -> str:
                raise RuntimeError("no repr")

        text = help_text("items", {"items": [BadRepr()]}, 0)
        assert text is not None
        self.assertIn("Type:      list\nValue:     [<BadRepr instance", text)
        self.assertIn("Length:    1", text)
