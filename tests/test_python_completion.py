"""Tests for txkernel.python.completion (tab completion for the Python kernel)."""

from __future__ import annotations

import collections
import itertools
import os
import sys
import textwrap
import threading
from typing import Any

from twisted.trial.unittest import SynchronousTestCase, TestCase

from txkernel.python import PythonKernel, modules
from txkernel.python.completion import Deadline, complete, resolve_expression

from .helpers import connect, serve


def _complete_at_end(
    code: str, namespace: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Complete at the end of ``code``, with time enough for all the work.

    (The budget itself is tested with deadlines on a clock of the test's.)
    """
    namespace = {} if namespace is None else namespace
    return complete(code, len(code), namespace, deadline=Deadline(60))


def _replaced(code: str, reply: dict[str, Any], match: str) -> str:
    """The code a frontend shows after choosing ``match``."""
    return code[: reply["cursor_start"]] + match + code[reply["cursor_end"] :]


class _Recorder:
    """An object whose property and methods record that they ran."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def expensive(self) -> str:
        self.calls.append("expensive")
        return "value"

    def method(self) -> str:
        self.calls.append("method")
        return "value"


class _RecordingMapping(collections.UserDict):  # type: ignore[type-arg]
    """A mapping that records every lookup."""

    def __init__(self, data: dict[Any, Any]) -> None:
        self.lookups: list[Any] = []
        super().__init__(data)

    def __getitem__(self, key: Any) -> Any:
        self.lookups.append(key)
        return super().__getitem__(key)


class ReplyShapeTests(SynchronousTestCase):
    def test_reply_has_the_complete_reply_fields(self) -> None:
        reply = _complete_at_end("pri")
        self.assertEqual(
            set(reply), {"status", "matches", "cursor_start", "cursor_end", "metadata"}
        )
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(set(reply["metadata"]), {"_jupyter_types_experimental"})

    def test_matches_are_sorted_without_duplicates(self) -> None:
        # "print" is both a builtin and (here) a namespace name.
        reply = _complete_at_end("pr", {"print": print, "prz": 1, "pra": 2})
        self.assertEqual(reply["matches"], sorted(set(reply["matches"])))
        self.assertEqual(reply["matches"].count("print"), 1)

    def test_cursor_out_of_range_gives_empty_matches_at_cursor(self) -> None:
        reply = complete("os", 10, {"os": os})
        self.assertEqual(reply["matches"], [])
        self.assertEqual((reply["cursor_start"], reply["cursor_end"]), (10, 10))

    def test_failing_dir_gives_empty_matches_instead_of_raising(self) -> None:
        class Broken:
            def __dir__(self) -> list[str]:
                raise RuntimeError("boom")

        reply = _complete_at_end("b.x", {"b": Broken()})
        self.assertEqual(reply["matches"], [])


class NameCompletionTests(SynchronousTestCase):
    def test_namespace_names_complete(self) -> None:
        reply = _complete_at_end("my", {"my_var": 1, "my_func": len, "other": 2})
        self.assertEqual(reply["matches"], ["my_func", "my_var"])
        self.assertEqual((reply["cursor_start"], reply["cursor_end"]), (0, 2))

    def test_builtins_and_keywords_complete(self) -> None:
        self.assertIn("print", _complete_at_end("pri")["matches"])
        self.assertIn("while", _complete_at_end("whi")["matches"])
        self.assertIn("match", _complete_at_end("mat")["matches"])

    def test_private_names_only_for_an_underscore_prefix(self) -> None:
        namespace = {"_hidden": 1, "__dunder__": 2, "shown": 3}
        self.assertNotIn("_hidden", _complete_at_end("", namespace)["matches"])
        self.assertIn("shown", _complete_at_end("", namespace)["matches"])
        matches = _complete_at_end("_", namespace)["matches"]
        self.assertIn("_hidden", matches)
        self.assertIn("__dunder__", matches)

    def test_only_the_token_before_the_cursor_is_completed(self) -> None:
        code = "x = value + pri"
        reply = complete(code, len(code), {})
        self.assertIn("print", reply["matches"])
        self.assertEqual(_replaced(code, reply, "print"), "x = value + print")

    def test_cursor_in_the_middle_of_the_code(self) -> None:
        code = "pri\nlen(x)"
        reply = complete(code, 3, {})
        self.assertIn("print", reply["matches"])
        self.assertEqual(_replaced(code, reply, "print"), "print\nlen(x)")

    def test_unicode_identifiers_complete(self) -> None:
        reply = _complete_at_end("caf", {"café": 1})
        self.assertEqual(reply["matches"], ["café"])

    def test_cursor_positions_count_code_points(self) -> None:
        code = 's = "日本🐍"; my'
        reply = _complete_at_end(code, {"my_var": 1})
        self.assertEqual(reply["matches"], ["my_var"])
        self.assertEqual(reply["cursor_start"], len(code) - 2)
        self.assertEqual(reply["cursor_end"], len(code))

    def test_number_literals_do_not_complete(self) -> None:
        self.assertEqual(_complete_at_end("1e")["matches"], [])
        self.assertEqual(_complete_at_end("1.")["matches"], [])


class AttributeCompletionTests(SynchronousTestCase):
    def test_attribute_completion_replaces_only_the_attribute_token(self) -> None:
        reply = _complete_at_end("os.pa", {"os": os})
        self.assertIn("path", reply["matches"])
        self.assertIn("pardir", reply["matches"])
        self.assertEqual((reply["cursor_start"], reply["cursor_end"]), (3, 5))
        self.assertEqual(_replaced("os.pa", reply, "path"), "os.path")

    def test_every_match_starts_with_the_typed_prefix(self) -> None:
        matches = _complete_at_end("os.pa", {"os": os})["matches"]
        self.assertTrue(all(match.startswith("pa") for match in matches))

    def test_nested_attributes_complete(self) -> None:
        reply = _complete_at_end("os.path.jo", {"os": os})
        self.assertEqual(reply["matches"], ["join"])

    def test_empty_attribute_prefix_lists_public_attributes(self) -> None:
        matches = _complete_at_end("os.path.", {"os": os})["matches"]
        self.assertIn("join", matches)
        self.assertNotIn("__name__", matches)

    def test_private_attributes_only_for_an_underscore_prefix(self) -> None:
        self.assertIn("__name__", _complete_at_end("os.__n", {"os": os})["matches"])

    def test_attributes_of_builtins_complete(self) -> None:
        self.assertIn("join", _complete_at_end("str.jo")["matches"])

    def test_attributes_on_a_later_line_use_absolute_offsets(self) -> None:
        code = "x = 1\nif x:\n    os.pa"
        reply = _complete_at_end(code, {"os": os})
        self.assertIn("path", reply["matches"])
        self.assertEqual(_replaced(code, reply, "path"), "x = 1\nif x:\n    os.path")

    def test_attributes_after_a_constant_subscript_complete(self) -> None:
        namespace = {"config": {"paths": os.path}, "items": [os]}
        self.assertIn(
            "join", _complete_at_end('config["paths"].jo', namespace)["matches"]
        )
        self.assertIn("path", _complete_at_end("items[0].pa", namespace)["matches"])
        self.assertIn("path", _complete_at_end("items[-1].pa", namespace)["matches"])

    def test_attributes_of_call_results_are_not_completed(self) -> None:
        recorder = _Recorder()
        reply = _complete_at_end("r.method().up", {"r": recorder})
        self.assertEqual(reply["matches"], [])
        self.assertEqual(recorder.calls, [])

    def test_properties_are_not_run_to_complete_their_attributes(self) -> None:
        recorder = _Recorder()
        reply = _complete_at_end("r.expensive.up", {"r": recorder})
        self.assertEqual(reply["matches"], [])
        self.assertEqual(recorder.calls, [])

    def test_listing_attributes_does_not_run_properties(self) -> None:
        recorder = _Recorder()
        reply = _complete_at_end("r.ex", {"r": recorder})
        self.assertEqual(reply["matches"], ["expensive"])
        self.assertEqual(recorder.calls, [])

    def test_custom_getitem_is_not_called(self) -> None:
        mapping = _RecordingMapping({"a": os})
        reply = _complete_at_end('m["a"].pa', {"m": mapping})
        self.assertEqual(reply["matches"], [])
        self.assertEqual(mapping.lookups, [])

    def test_arbitrary_expressions_in_subscripts_are_not_evaluated(self) -> None:
        recorder = _Recorder()
        namespace = {"r": recorder, "d": {"value": os}}
        reply = _complete_at_end("d[r.method()].pa", namespace)
        self.assertEqual(reply["matches"], [])
        self.assertEqual(recorder.calls, [])

    def test_unknown_object_gives_no_matches(self) -> None:
        reply = _complete_at_end("nothing_here.at")
        self.assertEqual(reply["matches"], [])


class DictKeyCompletionTests(SynchronousTestCase):
    namespace = {
        "d": {"key": 1, "kettle": 2, "other": 3, 10: "ten", 12: "twelve", b"raw": 4},
        "quotes": {"it's": 1, 'say "hi"': 2},
        "nested": {"inner": {"leaf": 1}},
    }

    def test_quoted_keys_replace_from_the_opening_quote(self) -> None:
        code = 'd["ke'
        reply = _complete_at_end(code, self.namespace)
        self.assertEqual(reply["matches"], ['"kettle"', '"key"'])
        self.assertEqual((reply["cursor_start"], reply["cursor_end"]), (2, 5))
        self.assertEqual(_replaced(code, reply, '"key"'), 'd["key"')

    def test_keys_use_the_quote_the_user_typed(self) -> None:
        reply = _complete_at_end("d['ke", self.namespace)
        self.assertEqual(reply["matches"], ["'kettle'", "'key'"])

    def test_an_autoclosed_quote_after_the_cursor_is_replaced(self) -> None:
        code = 'd["ke"]'
        reply = complete(code, 5, self.namespace)
        self.assertEqual(reply["cursor_end"], 6)
        self.assertEqual(_replaced(code, reply, '"key"'), 'd["key"]')

    def test_quote_characters_in_keys_are_escaped(self) -> None:
        self.assertEqual(
            _complete_at_end("quotes['it", self.namespace)["matches"], ["'it\\'s'"]
        )
        self.assertEqual(
            _complete_at_end('quotes["it', self.namespace)["matches"], ['"it\'s"']
        )
        self.assertEqual(
            _complete_at_end('quotes["say', self.namespace)["matches"],
            ['"say \\"hi\\""'],
        )

    def test_open_bracket_lists_every_key_as_a_literal(self) -> None:
        reply = _complete_at_end("d[", self.namespace)
        self.assertEqual(
            reply["matches"], ["'kettle'", "'key'", "'other'", "10", "12", "b'raw'"]
        )
        self.assertEqual(reply["cursor_start"], 2)

    def test_integer_keys_complete_from_digits(self) -> None:
        reply = _complete_at_end("d[1", self.namespace)
        self.assertEqual(reply["matches"], ["10", "12"])
        self.assertEqual(reply["cursor_start"], 2)

    def test_bytes_keys_complete_after_a_b_prefix(self) -> None:
        reply = _complete_at_end("d[b'", self.namespace)
        self.assertEqual(reply["matches"], ["b'raw'"])
        self.assertEqual(reply["cursor_start"], 2)

    def test_keys_of_nested_dicts_complete(self) -> None:
        reply = _complete_at_end('nested["inner"]["le', self.namespace)
        self.assertEqual(reply["matches"], ['"leaf"'])

    def test_key_completion_inside_a_larger_expression(self) -> None:
        code = 'print(1, d["ot'
        reply = _complete_at_end(code, self.namespace)
        self.assertEqual(
            _replaced(code, reply, reply["matches"][0]), 'print(1, d["other"'
        )

    def test_quoted_token_on_a_non_mapping_gives_no_matches(self) -> None:
        reply = _complete_at_end('x["ke', {"x": [1, 2], "key": 3})
        self.assertEqual(reply["matches"], [])

    def test_mapping_with_custom_lookup_is_not_touched(self) -> None:
        mapping = _RecordingMapping({"key": 1})
        reply = _complete_at_end('m["k', {"m": mapping})
        self.assertEqual(reply["matches"], [])
        self.assertEqual(mapping.lookups, [])

    def test_environment_variable_names_complete(self) -> None:
        os.environ["TXKERNEL_COMPLETION_TEST"] = "1"
        self.addCleanup(os.environ.pop, "TXKERNEL_COMPLETION_TEST")
        reply = _complete_at_end('os.environ["TXKERNEL_COMP', {"os": os})
        self.assertEqual(reply["matches"], ['"TXKERNEL_COMPLETION_TEST"'])


class ImportCompletionTests(SynchronousTestCase):
    def test_import_lists_top_level_modules(self) -> None:
        reply = _complete_at_end("import o")
        self.assertIn("os", reply["matches"])
        self.assertEqual((reply["cursor_start"], reply["cursor_end"]), (7, 8))

    def test_import_lists_builtin_modules(self) -> None:
        name = sorted(sys.builtin_module_names)[-1]
        self.assertIn(name, _complete_at_end("import " + name[:2])["matches"])

    def test_top_level_import_completion_imports_nothing(self) -> None:
        if "this" in sys.modules:
            self.skipTest("the 'this' module is already imported")
        self.assertIn("this", _complete_at_end("import thi")["matches"])
        self.assertNotIn("this", sys.modules)

    def test_dotted_import_completes_the_last_component(self) -> None:
        code = "import os.pa"
        reply = _complete_at_end(code)
        self.assertEqual(reply["matches"], ["path"])
        self.assertEqual(_replaced(code, reply, "path"), "import os.path")

    def test_dotted_import_lists_submodules_of_a_package(self) -> None:
        matches = _complete_at_end("import json.d")["matches"]
        self.assertEqual(matches, ["decoder"])

    def test_import_after_a_comma(self) -> None:
        self.assertIn("sys", _complete_at_end("import os, sy")["matches"])

    def test_nothing_to_complete_after_as(self) -> None:
        self.assertEqual(_complete_at_end("import os as o")["matches"], [])

    def test_from_lists_modules_and_submodules(self) -> None:
        self.assertIn("os", _complete_at_end("from o")["matches"])
        reply = _complete_at_end("from os.p")
        self.assertEqual(reply["matches"], ["path"])
        self.assertEqual(reply["cursor_start"], len("from os."))

    def test_from_completes_the_import_keyword(self) -> None:
        reply = _complete_at_end("from os imp")
        self.assertEqual(reply["matches"], ["import"])

    def test_from_import_lists_module_members(self) -> None:
        code = "from os import pa"
        reply = _complete_at_end(code)
        self.assertIn("path", reply["matches"])
        self.assertIn("pathsep", reply["matches"])
        self.assertEqual(_replaced(code, reply, "path"), "from os import path")

    def test_from_import_lists_submodules_of_a_package(self) -> None:
        self.assertIn("decoder", _complete_at_end("from json import de")["matches"])

    def test_from_import_after_comma_and_parenthesis(self) -> None:
        self.assertIn("sep", _complete_at_end("from os import path, se")["matches"])
        self.assertIn("sep", _complete_at_end("from os import (path, se")["matches"])

    def test_from_import_hides_private_names(self) -> None:
        matches = _complete_at_end("from os import ")["matches"]
        self.assertIn("path", matches)
        self.assertFalse([name for name in matches if name.startswith("_")])

    def test_indented_import_and_import_after_semicolon(self) -> None:
        self.assertEqual(
            _complete_at_end("def f():\n    import os.pa")["matches"], ["path"]
        )
        self.assertEqual(_complete_at_end("x = 1; import os.pa")["matches"], ["path"])

    def test_unknown_module_gives_no_matches(self) -> None:
        reply = _complete_at_end("from txkernel_no_such_module import a")
        self.assertEqual(reply["matches"], [])
        self.assertEqual(
            _complete_at_end("import txkernel_no_such_module.a")["matches"], []
        )

    def test_relative_imports_give_no_matches(self) -> None:
        self.assertEqual(_complete_at_end("from . import a")["matches"], [])


class ResolveExpressionTests(SynchronousTestCase):
    def test_names_attributes_and_constant_subscripts_resolve(self) -> None:
        namespace = {"data": {"key": [os]}}
        self.assertIs(resolve_expression('data["key"][0].path', namespace), os.path)
        self.assertIs(resolve_expression("len", {}), len)

    def test_calls_are_refused(self) -> None:
        recorder = _Recorder()
        self.assertRaises(ValueError, resolve_expression, "r.method()", {"r": recorder})
        self.assertEqual(recorder.calls, [])

    def test_properties_resolve_to_the_descriptor_only_on_request(self) -> None:
        recorder = _Recorder()
        self.assertRaises(
            ValueError, resolve_expression, "r.expensive", {"r": recorder}
        )
        found = resolve_expression("r.expensive", {"r": recorder}, descriptors=True)
        self.assertIsInstance(found, property)
        self.assertEqual(recorder.calls, [])


def _types(reply: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Each match's (type, signature) from the reply's experimental metadata."""
    entries = reply["metadata"]["_jupyter_types_experimental"]
    return {entry["text"]: (entry["type"], entry["signature"]) for entry in entries}


def _expired() -> Deadline:
    """A deadline whose budget is already spent."""
    return Deadline(0.0, clock=lambda: 0.0)


class CellBindingTests(SynchronousTestCase):
    """Names the cell binds before the cursor count, before the cell runs."""

    def test_a_module_imported_earlier_on_the_line_completes(self) -> None:
        code = "import collections; collections.Ord"
        reply = _complete_at_end(code)
        self.assertEqual(reply["matches"], ["OrderedDict"])
        self.assertEqual(
            _replaced(code, reply, "OrderedDict"),
            "import collections; collections.OrderedDict",
        )

    def test_a_module_imported_on_an_earlier_line_completes(self) -> None:
        code = "import collections\nx = 1\ncollections.Ord"
        self.assertEqual(_complete_at_end(code)["matches"], ["OrderedDict"])

    def test_import_as_and_from_import_as(self) -> None:
        self.assertIn("dumps", _complete_at_end("import json as j; j.du")["matches"])
        reply = _complete_at_end("from collections import OrderedDict as OD\nOD.fromk")
        self.assertEqual(reply["matches"], ["fromkeys"])
        self.assertEqual(
            _complete_at_end("import xml.etree.ElementTree as ET; ET.Elem")["matches"],
            ["Element", "ElementPath", "ElementTree"],
        )

    def test_a_from_import_of_a_submodule(self) -> None:
        self.assertIn("join", _complete_at_end("from os import path; path.jo")["matches"])

    def test_the_cell_is_not_run(self) -> None:
        namespace: dict[str, Any] = {}
        reply = _complete_at_end("import os; ran = 1; os.pa", namespace)
        self.assertIn("path", reply["matches"])
        self.assertEqual(namespace, {})

    def test_names_the_cell_binds_complete_as_names(self) -> None:
        code = "import collections\ndef helper_fn(): pass\nclass HelperClass: pass\nhelper_value = 3\nhel"
        reply = _complete_at_end(code)
        self.assertEqual(reply["matches"], ["help", "helper_fn", "helper_value"])
        self.assertEqual(_types(reply)["helper_fn"][0], "function")
        classes = _complete_at_end(code[:-3] + "Hel")
        self.assertEqual(_types(classes), {"HelperClass": ("class", "")})
        self.assertEqual(_types(_complete_at_end("import collections\ncoll"))["collections"][0], "module")

    def test_literals_and_constructor_calls_give_their_types_attributes(self) -> None:
        self.assertEqual(_complete_at_end("s = 'text'; s.upp")["matches"], ["upper"])
        self.assertEqual(_complete_at_end("d = {}\nd.setd")["matches"], ["setdefault"])
        self.assertEqual(_complete_at_end("xs = [i for i in y]\nxs.app")["matches"], ["append"])
        code = "import collections\nc = collections.OrderedDict()\nc.move"
        self.assertEqual(_complete_at_end(code)["matches"], ["move_to_end"])

    def test_an_alias_of_an_attribute(self) -> None:
        self.assertEqual(_complete_at_end("import os\njoin = os.path.join\njoin.__na")["matches"], ["__name__"])

    def test_the_cell_wins_over_the_namespace_for_names_it_rebinds(self) -> None:
        self.assertEqual(_complete_at_end("x = 'text'; x.upp", {"x": 1})["matches"], ["upper"])

    def test_a_binding_that_cannot_be_followed_leaves_the_namespace_value(self) -> None:
        namespace = {"x": "text", "f": len}
        self.assertEqual(_complete_at_end("x = f(1)\nx.upp", namespace)["matches"], ["upper"])
        self.assertEqual(_complete_at_end("x = x.y; x.upp", namespace)["matches"], ["upper"])

    def test_calls_in_the_cell_are_not_made(self) -> None:
        recorder = _Recorder()
        reply = _complete_at_end("v = r.method()\nv.up", {"r": recorder})
        self.assertEqual(reply["matches"], [])
        self.assertEqual(recorder.calls, [])

    def test_bindings_after_the_cursor_do_not_count(self) -> None:
        code = "collections.Ord\nimport collections"
        self.assertEqual(complete(code, len("collections.Ord"), {})["matches"], [])

    def test_an_unfinished_block_before_the_cursor_still_counts(self) -> None:
        code = "def f():\n    import json\n    for x in (1,\n        json.du"
        self.assertEqual(_complete_at_end(code)["matches"], ["dump", "dumps"])

    def test_a_broken_line_before_the_cursor_does_not_hide_the_lines_before_it(self) -> None:
        code = "import json\nx = (\njson.du"
        self.assertEqual(_complete_at_end(code)["matches"], ["dump", "dumps"])

    def test_lines_python_rejects_do_not_hide_the_others(self) -> None:
        code = "%time setup()\nimport json\n!ls -l\njson.du"
        self.assertEqual(_complete_at_end(code)["matches"], ["dump", "dumps"])

    def test_a_call_left_open_over_many_lines(self) -> None:
        code = "import json\n" + "f(\n" * 30 + "json.du"
        self.assertEqual(_complete_at_end(code)["matches"], ["dump", "dumps"])

    def test_an_unterminated_string_before_the_cursor(self) -> None:
        code = "import json\ntext = \"\"\"\nsome words\njson.du"
        self.assertEqual(_complete_at_end(code)["matches"], ["dump", "dumps"])

    def test_numpy_alias(self) -> None:
        try:
            import numpy  # noqa: F401
        except ImportError:
            raise self.skipTest("numpy is not installed") from None
        self.assertIn("array", _complete_at_end("import numpy as np; np.ar")["matches"])


class TypeMetadataTests(SynchronousTestCase):
    """``_jupyter_types_experimental``: one entry per match, in order, as JupyterLab reads it."""

    def test_one_entry_per_match_in_the_same_order(self) -> None:
        reply = _complete_at_end("os.pa", {"os": os})
        entries = reply["metadata"]["_jupyter_types_experimental"]
        self.assertEqual([entry["text"] for entry in entries], reply["matches"])
        for entry in entries:
            self.assertEqual(
                (entry["start"], entry["end"]), (reply["cursor_start"], reply["cursor_end"])
            )
            self.assertEqual(set(entry), {"start", "end", "text", "type", "signature"})

    def test_types_of_attributes(self) -> None:
        types = _types(_complete_at_end("os.", {"os": os}))
        self.assertEqual(types["path"], ("module", ""))
        self.assertEqual(types["sep"], ("instance", ""))
        self.assertEqual(types["PathLike"], ("class", ""))
        kind, signature = types["makedirs"]
        self.assertEqual(kind, "function")
        self.assertIn("exist_ok=False", signature)

    def test_types_of_names_and_keywords(self) -> None:
        types = _types(_complete_at_end("", {"os": os, "value": 3}))
        self.assertEqual(types["os"][0], "module")
        self.assertEqual(types["value"][0], "instance")
        self.assertEqual(types["while"][0], "keyword")
        self.assertEqual(types["len"][0], "function")
        self.assertEqual(types["dict"][0], "class")

    def test_properties_are_typed_without_running_them(self) -> None:
        recorder = _Recorder()
        self.assertEqual(_types(_complete_at_end("r.ex", {"r": recorder}))["expensive"][0], "property")
        self.assertEqual(recorder.calls, [])

    def test_import_and_key_completions_are_typed(self) -> None:
        self.assertEqual(_types(_complete_at_end("import json.d"))["decoder"][0], "module")
        self.assertEqual(_types(_complete_at_end("from json import lo"))["loads"][0], "function")
        self.assertEqual(_types(_complete_at_end('d["k', {"d": {"key": 1}}))['"key"'][0], "dict key")

    def test_types_are_left_unknown_once_the_budget_is_spent(self) -> None:
        reply = complete("os.pa", 5, {"os": os}, deadline=_expired())
        self.assertIn("path", reply["matches"])
        self.assertEqual({entry["type"] for entry in reply["metadata"]["_jupyter_types_experimental"]}, {"<unknown>"})


class ModulesNotImportedTests(SynchronousTestCase):
    """Modules the cell names but nothing has imported yet."""

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        sys.path.insert(0, self.directory)
        self.addCleanup(sys.path.remove, self.directory)
        self.names = [f"txkernel_completion_probe_{next(_probes)}" for _ in range(2)]
        for name in self.names:
            self.addCleanup(sys.modules.pop, name, None)
        self.patch(modules, "_imports", modules._Imports())

    def write_module(self, name: str, source: str) -> None:
        with open(os.path.join(self.directory, name + ".py"), "w") as f:
            f.write(textwrap.dedent(source))

    def installed(self) -> None:
        """Count the test directory as installed packages (safe to import)."""
        roots = (*modules._install_roots(), os.path.join(os.path.realpath(self.directory), ""))
        self.patch(modules, "_install_roots", lambda: roots)

    def test_a_module_of_the_users_own_is_read_not_imported(self) -> None:
        name = self.names[0]
        marker = os.path.join(self.directory, "imported")
        self.write_module(
            name,
            f"""
            open({marker!r}, "w").close()
            __all__ = ["exported_name"]
            def train_model(epochs): pass
            class ModelConfig: pass
            model_size = 3
            """,
        )
        reply = _complete_at_end(f"import {name}; {name}.")
        self.assertEqual(reply["matches"], ["ModelConfig", "exported_name", "model_size", "train_model"])
        self.assertEqual(_complete_at_end(f"from {name} import tr")["matches"], ["train_model"])
        self.assertNotIn(name, sys.modules)
        self.assertFalse(os.path.exists(marker))

    def test_an_installed_module_is_imported_within_the_budget(self) -> None:
        name = self.names[0]
        self.write_module(name, "globals()['made_at_import'] = 1\n")
        self.installed()
        reply = _complete_at_end(f"import {name}\n{name}.made")
        self.assertEqual(reply["matches"], ["made_at_import"])

    def test_a_slow_import_is_waited_for_only_until_the_deadline(self) -> None:
        name = self.names[0]
        gate = threading.Event()
        sys._txkernel_test_gate = gate  # type: ignore[attr-defined]
        self.addCleanup(delattr, sys, "_txkernel_test_gate")
        self.addCleanup(gate.set)
        self.write_module(
            name,
            """
            import sys
            sys._txkernel_test_gate.wait(60)
            def written_in_source(): pass
            globals()['made_at_import'] = 1
            """,
        )
        self.installed()
        imports = modules._Imports()
        self.patch(modules, "_imports", imports)
        # A clock that stands still: a tenth of a second is always left, so
        # the import starts and is waited for until 40 ms are left; blocked on
        # the gate, it has not finished then.
        code = f"import {name}\n{name}."
        reply = complete(code, len(code), {}, deadline=Deadline(0.1, clock=lambda: 0.0))
        self.assertIn("written_in_source", reply["matches"])
        self.assertNotIn("made_at_import", reply["matches"])
        importer = imports.running(name)
        assert importer is not None
        self.assertTrue(importer.is_alive())
        gate.set()
        importer.join(30)
        self.assertIn("made_at_import", _complete_at_end(code)["matches"])

    def test_with_the_budget_spent_an_import_is_not_even_started(self) -> None:
        name = self.names[0]
        self.write_module(name, "def written_in_source(): pass\n")
        self.installed()
        found = modules.find_module(name, lambda: 0.0)
        assert isinstance(found, modules.StaticModule)
        self.assertIn("written_in_source", modules.module_names(found))
        self.assertIsNone(modules._imports.running(name))
        self.assertNotIn(name, sys.modules)

    def test_a_submodule_not_yet_imported_completes_as_an_attribute(self) -> None:
        package = self.names[1]
        os.makedirs(os.path.join(self.directory, package))
        with open(os.path.join(self.directory, package, "__init__.py"), "w"):
            pass
        with open(os.path.join(self.directory, package, "tools.py"), "w") as f:
            f.write("def sharpen(): pass\n")
        self.assertEqual(_complete_at_end(f"import {package}; {package}.to")["matches"], ["tools"])
        self.assertEqual(
            _complete_at_end(f"import {package}; {package}.tools.sh")["matches"], ["sharpen"]
        )
        self.assertEqual(_complete_at_end(f"from {package}.tools import sh")["matches"], ["sharpen"])
        # A package an earlier cell imported, its submodule not imported yet.
        imported = __import__(package)
        self.addCleanup(sys.modules.pop, f"{package}.tools", None)
        self.assertEqual(_complete_at_end("p.tools.sh", {"p": imported})["matches"], ["sharpen"])
        self.assertNotIn(f"{package}.tools", sys.modules)

    def test_scanning_for_modules_stops_at_the_deadline(self) -> None:
        name = self.names[0]
        self.write_module(name, "")
        sys.path.append(sys.path.pop(0))  # found last in a scan of sys.path
        self.addCleanup(lambda: sys.path.insert(0, sys.path.pop()))
        self.assertIn(name, _complete_at_end("import txkernel_completion_pro")["matches"])
        reply = complete("import txkernel_completion_pro", 30, {}, deadline=_expired())
        self.assertEqual(reply["matches"], [])
        self.assertIn("sys", complete("import sy", 9, {}, deadline=_expired())["matches"])


_probes = itertools.count()


class KernelCompletionTests(TestCase):
    """complete_request through the project's client, to a served Python kernel."""

    timeout = 60

    async def test_the_cell_text_and_types_reach_the_frontend(self) -> None:
        kernel = PythonKernel()
        kernel.completion_budget = 60  # all the work done, however loaded the machine
        service = await serve(self, kernel)
        client = await connect(self, service)
        reply = (await client.complete("import collections; collections.Ord"))["content"]
        self.assertEqual(reply["matches"], ["OrderedDict"])
        self.assertEqual(
            reply["metadata"]["_jupyter_types_experimental"],
            [{"start": 32, "end": 35, "text": "OrderedDict", "type": "class", "signature": ""}],
        )
        reply = (await client.complete("from os import pa"))["content"]
        self.assertIn("path", reply["matches"])
