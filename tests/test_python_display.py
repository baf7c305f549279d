"""Tests for txkernel.python.display: mimebundles, display objects, publishing."""

from __future__ import annotations

import base64
import json
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from txkernel.python.display import (
    HTML,
    JSON,
    SVG,
    DisplayHandle,
    DisplayPublisher,
    Image,
    Javascript,
    Latex,
    Markdown,
    Pretty,
    format_object,
    publish_display_data,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 8


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


class Rich:
    """An object with several ``_repr_*_`` methods."""

    def _repr_html_(self) -> str:
        return "<b>rich</b>"

    def _repr_markdown_(self) -> str:
        return "**rich**"

    def _repr_latex_(self) -> tuple[str, dict]:
        return "$x$", {"isolated": True}

    def _repr_json_(self) -> dict:
        return {"a": 1}

    def _repr_svg_(self) -> None:
        return None

    def __repr__(self) -> str:
        return "Rich()"


class Failing:
    """An object whose HTML repr raises."""

    def _repr_html_(self) -> str:
        raise ValueError("no html today")

    def _repr_markdown_(self) -> str:
        return "*fine*"

    def __repr__(self) -> str:
        return "Failing()"


class Recorder:
    """A ``send`` callable remembering what it was given."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, msg_type: str, content: dict[str, Any]) -> None:
        self.sent.append((msg_type, content))


class FormatObjectTests(SynchronousTestCase):
    def test_plain_object_gets_only_text_plain_repr(self) -> None:
        self.assertEqual(format_object(42), ({"text/plain": "42"}, {}))

    def test_repr_methods_fill_their_mimetypes(self) -> None:
        data, metadata = format_object(Rich())
        self.assertEqual(
            data,
            {
                "text/plain": "Rich()",
                "text/html": "<b>rich</b>",
                "text/markdown": "**rich**",
                "text/latex": "$x$",
                "application/json": {"a": 1},
            },
        )
        self.assertEqual(metadata, {"text/latex": {"isolated": True}})

    def test_repr_returning_none_is_skipped(self) -> None:
        data, _ = format_object(Rich())
        self.assertNotIn("image/svg+xml", data)

    def test_long_containers_are_pretty_printed_over_several_lines(self) -> None:
        value = {f"key{i}": list(range(10)) for i in range(10)}
        text = format_object(value)[0]["text/plain"]
        self.assertIn("\n", text)
        self.assertEqual(eval(text), value)

    def test_short_list_is_on_one_line(self) -> None:
        self.assertEqual(format_object([1, 2])[0], {"text/plain": "[1, 2]"})

    def test_mimebundle_dict_is_used_and_repr_methods_add_to_it(self) -> None:
        class Bundle:
            def _repr_mimebundle_(self, include=None, exclude=None):
                return {"text/html": "<i>bundle</i>", "text/plain": "custom"}

            def _repr_html_(self):
                return "<i>method</i>"

            def _repr_markdown_(self):
                return "md"

        data, _ = format_object(Bundle())
        self.assertEqual(
            data,
            {
                "text/html": "<i>bundle</i>",
                "text/plain": "custom",
                "text/markdown": "md",
            },
        )

    def test_mimebundle_tuple_gives_data_and_metadata(self) -> None:
        class Bundle:
            def _repr_mimebundle_(self, include=None, exclude=None):
                return {"text/html": "<p/>"}, {"text/html": {"isolated": True}}

        data, metadata = format_object(Bundle())
        self.assertEqual(data["text/html"], "<p/>")
        self.assertIn("text/plain", data)
        self.assertEqual(metadata, {"text/html": {"isolated": True}})

    def test_mimebundle_receives_include_and_exclude(self) -> None:
        seen = []

        class Bundle:
            def _repr_mimebundle_(self, include=None, exclude=None):
                seen.append((include, exclude))
                return {}

        format_object(Bundle(), include=["text/html"], exclude=["image/png"])
        self.assertEqual(seen, [(["text/html"], ["image/png"])])

    def test_include_limits_rich_mimetypes_but_keeps_text_plain(self) -> None:
        data, metadata = format_object(Rich(), include={"text/html"})
        self.assertEqual(data, {"text/html": "<b>rich</b>", "text/plain": "Rich()"})
        self.assertEqual(metadata, {})

    def test_exclude_drops_mimetypes_but_never_text_plain(self) -> None:
        data, _ = format_object(Rich(), exclude={"text/html", "text/plain"})
        self.assertNotIn("text/html", data)
        self.assertEqual(data["text/plain"], "Rich()")
        self.assertIn("text/markdown", data)

    def test_binary_image_is_base64_encoded(self) -> None:
        class Picture:
            def _repr_png_(self):
                return PNG

            def _repr_pdf_(self):
                return b"%PDF-1.4"

        data, _ = format_object(Picture())
        self.assertEqual(data["image/png"], b64(PNG))
        self.assertEqual(data["application/pdf"], b64(b"%PDF-1.4"))
        json.dumps(data)

    def test_base64_text_image_is_kept_as_is(self) -> None:
        class Picture:
            def _repr_jpeg_(self):
                return b64(JPEG), {"width": 10}

        data, metadata = format_object(Picture())
        self.assertEqual(data["image/jpeg"], b64(JPEG))
        self.assertEqual(metadata, {"image/jpeg": {"width": 10}})

    def test_binary_in_mimebundle_is_base64_encoded(self) -> None:
        class Bundle:
            def _repr_mimebundle_(self, include=None, exclude=None):
                return {"image/png": PNG}

        self.assertEqual(format_object(Bundle())[0]["image/png"], b64(PNG))

    def test_failing_repr_method_is_logged_and_skipped(self) -> None:
        data, _ = format_object(Failing())
        self.assertEqual(data, {"text/plain": "Failing()", "text/markdown": "*fine*"})
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_failing_mimebundle_is_logged_and_skipped(self) -> None:
        class Bundle:
            def _repr_mimebundle_(self, include=None, exclude=None):
                raise RuntimeError("broken")

            def _repr_html_(self):
                return "<p/>"

        data, _ = format_object(Bundle())
        self.assertEqual(data["text/html"], "<p/>")
        self.assertIn("text/plain", data)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_failing_repr_methods_are_collected_when_asked(self) -> None:
        errors: list[Exception] = []
        data, _ = format_object(Failing(), errors=errors)
        self.assertEqual(data, {"text/plain": "Failing()", "text/markdown": "*fine*"})
        self.assertEqual([type(e) for e in errors], [ValueError])
        self.assertEqual(self.flushLoggedErrors(ValueError), [])

    def test_not_implemented_declines_a_format_quietly(self) -> None:
        class Declining:
            def _repr_html_(self):
                raise NotImplementedError

            def __repr__(self):
                return "Declining()"

        errors: list[Exception] = []
        self.assertEqual(format_object(Declining(), errors=errors)[0], {"text/plain": "Declining()"})
        self.assertEqual(errors, [])
        format_object(Declining())
        self.assertEqual(self.flushLoggedErrors(NotImplementedError), [])

    def test_failing_repr_still_gives_text_plain(self) -> None:
        class Broken:
            def __repr__(self):
                raise ValueError("no repr")

        text = format_object(Broken())[0]["text/plain"]
        self.assertIn("Broken", text)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_class_with_repr_methods_shows_only_its_repr(self) -> None:
        self.assertEqual(format_object(Rich), ({"text/plain": repr(Rich)}, {}))

    def test_object_claiming_every_attribute_is_not_asked_for_reprs(self) -> None:
        class Anything:
            def __getattr__(self, name):
                return lambda *a, **kw: "<b>oops</b>"

            def __repr__(self):
                return "Anything()"

        self.assertEqual(format_object(Anything()), ({"text/plain": "Anything()"}, {}))

    def test_non_callable_repr_attribute_is_ignored(self) -> None:
        class Odd:
            _repr_html_ = "not a method"

        self.assertEqual(list(format_object(Odd())[0]), ["text/plain"])


class DisplayObjectTests(SynchronousTestCase):
    def test_text_display_objects_give_their_mimetype(self) -> None:
        cases = [
            (HTML("<b>x</b>"), "text/html"),
            (Markdown("# x"), "text/markdown"),
            (SVG("<svg/>"), "image/svg+xml"),
            (Latex("$x^2$"), "text/latex"),
            (Javascript("alert(1)"), "application/javascript"),
        ]
        for obj, mimetype in cases:
            data, _ = format_object(obj)
            self.assertEqual(data[mimetype], obj.data)
            self.assertEqual(data["text/plain"], repr(obj))

    def test_text_display_object_repr_names_class_and_data(self) -> None:
        self.assertEqual(repr(HTML("<b>x</b>")), "HTML('<b>x</b>')")

    def test_text_display_object_repr_abbreviates_long_data(self) -> None:
        self.assertLess(len(repr(Markdown("x" * 10000))), 100)

    def test_text_display_object_decodes_bytes(self) -> None:
        self.assertEqual(SVG(b"<svg/>").data, "<svg/>")

    def test_text_display_object_rejects_non_text(self) -> None:
        self.assertRaises(TypeError, HTML, 42)

    def test_json_gives_data_and_tree_metadata(self) -> None:
        data, metadata = format_object(JSON({"a": [1, 2]}, expanded=True))
        self.assertEqual(data["application/json"], {"a": [1, 2]})
        self.assertEqual(
            metadata, {"application/json": {"expanded": True, "root": "root"}}
        )

    def test_json_parses_json_text(self) -> None:
        self.assertEqual(JSON('{"a": 1}').data, {"a": 1})

    def test_json_rejects_unserialisable_data(self) -> None:
        self.assertRaises(TypeError, JSON, {"a": object()})

    def test_pretty_shows_its_text_as_plain_text(self) -> None:
        pretty = Pretty("  aligned\n  text")
        self.assertEqual(
            format_object(pretty), ({"text/plain": "  aligned\n  text"}, {})
        )
        self.assertEqual(repr(pretty), "  aligned\n  text")

    def test_png_image_from_bytes(self) -> None:
        data, metadata = format_object(Image(PNG))
        self.assertEqual(data["image/png"], b64(PNG))
        self.assertNotIn("image/jpeg", data)
        self.assertEqual(metadata, {})

    def test_jpeg_format_is_detected_from_bytes(self) -> None:
        data, _ = format_object(Image(JPEG))
        self.assertEqual(data["image/jpeg"], b64(JPEG))
        self.assertNotIn("image/png", data)

    def test_image_from_file_uses_its_extension(self) -> None:
        path = self.mktemp() + ".jpg"
        with open(path, "wb") as f:
            f.write(PNG)
        image = Image(filename=path)
        self.assertEqual(image.format, "jpeg")
        self.assertEqual(format_object(image)[0]["image/jpeg"], b64(PNG))

    def test_explicit_format_wins(self) -> None:
        self.assertEqual(Image(PNG, format="JPEG").format, "jpeg")

    def test_image_size_goes_into_metadata(self) -> None:
        _, metadata = format_object(Image(PNG, width=100, height=50))
        self.assertEqual(metadata, {"image/png": {"width": 100, "height": 50}})

    def test_image_base64_text_is_kept(self) -> None:
        image = Image(b64(JPEG))
        self.assertEqual(image.format, "jpeg")
        self.assertEqual(format_object(image)[0]["image/jpeg"], b64(JPEG))

    def test_image_needs_exactly_one_source(self) -> None:
        self.assertRaises(ValueError, Image)
        self.assertRaises(ValueError, Image, PNG, filename="x.png")

    def test_image_rejects_unknown_format(self) -> None:
        self.assertRaises(ValueError, Image, PNG, format="gif")

    def test_image_repr_gives_format_and_size(self) -> None:
        self.assertEqual(repr(Image(PNG)), f"<Image png: {len(PNG)} bytes>")


class PublishDisplayDataTests(SynchronousTestCase):
    def test_sends_display_data(self) -> None:
        send = Recorder()
        publish_display_data(send, {"text/plain": "x"})
        self.assertEqual(
            send.sent,
            [
                (
                    "display_data",
                    {"data": {"text/plain": "x"}, "metadata": {}, "transient": {}},
                )
            ],
        )

    def test_update_sends_update_display_data(self) -> None:
        send = Recorder()
        publish_display_data(
            send, {"text/plain": "x"}, transient={"display_id": "a"}, update=True
        )
        self.assertEqual(send.sent[0][0], "update_display_data")
        self.assertEqual(send.sent[0][1]["transient"], {"display_id": "a"})


class DisplayPublisherTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.send = Recorder()
        self.publisher = DisplayPublisher(self.send)

    def test_display_sends_one_display_data_per_object(self) -> None:
        self.publisher.display(1, HTML("<b/>"))
        self.assertEqual(
            self.send.sent,
            [
                (
                    "display_data",
                    {"data": {"text/plain": "1"}, "metadata": {}, "transient": {}},
                ),
                (
                    "display_data",
                    {
                        "data": {"text/plain": "HTML('<b/>')", "text/html": "<b/>"},
                        "metadata": {},
                        "transient": {},
                    },
                ),
            ],
        )

    def test_display_without_id_returns_none(self) -> None:
        self.assertIsNone(self.publisher.display(1))

    def test_raw_display_sends_bundle_unchanged(self) -> None:
        self.publisher.display({"text/markdown": "# hi"}, raw=True)
        self.assertEqual(self.send.sent[0][1]["data"], {"text/markdown": "# hi"})

    def test_raw_display_rejects_non_dict(self) -> None:
        self.assertRaises(TypeError, self.publisher.display, "x", raw=True)
        self.assertEqual(self.send.sent, [])

    def test_metadata_and_transient_are_passed_on(self) -> None:
        self.publisher.display(1, metadata={"tag": "x"}, transient={"extra": True})
        content = self.send.sent[0][1]
        self.assertEqual(content["metadata"], {"tag": "x"})
        self.assertEqual(content["transient"], {"extra": True})

    def test_include_and_exclude_filter_the_bundle(self) -> None:
        self.publisher.display(Rich(), include={"text/markdown"})
        self.assertEqual(
            self.send.sent[0][1]["data"],
            {"text/plain": "Rich()", "text/markdown": "**rich**"},
        )

    def test_display_id_goes_into_transient_and_gives_handle(self) -> None:
        handle = self.publisher.display(1, display_id="abc")
        self.assertIsInstance(handle, DisplayHandle)
        self.assertEqual(handle.display_id, "abc")
        self.assertEqual(self.send.sent[0][1]["transient"], {"display_id": "abc"})

    def test_display_id_true_generates_new_hex_ids(self) -> None:
        first = self.publisher.display(1, display_id=True)
        second = self.publisher.display(2, display_id=True)
        self.assertNotEqual(first.display_id, second.display_id)
        int(first.display_id, 16)
        self.assertEqual(
            self.send.sent[0][1]["transient"], {"display_id": first.display_id}
        )

    def test_handle_update_sends_update_display_data(self) -> None:
        handle = self.publisher.display(1, display_id="abc")
        handle.update(2)
        self.assertEqual(
            self.send.sent[1],
            (
                "update_display_data",
                {
                    "data": {"text/plain": "2"},
                    "metadata": {},
                    "transient": {"display_id": "abc"},
                },
            ),
        )

    def test_handle_display_adds_another_output_with_same_id(self) -> None:
        handle = self.publisher.display(1, display_id="abc")
        handle.display(3)
        self.assertEqual(self.send.sent[1][0], "display_data")
        self.assertEqual(self.send.sent[1][1]["transient"], {"display_id": "abc"})

    def test_update_display_replaces_by_id(self) -> None:
        self.publisher.update_display(HTML("<i/>"), display_id="abc")
        msg_type, content = self.send.sent[0]
        self.assertEqual(msg_type, "update_display_data")
        self.assertEqual(content["data"]["text/html"], "<i/>")
        self.assertEqual(content["transient"], {"display_id": "abc"})

    def test_update_without_display_id_is_refused(self) -> None:
        self.assertRaises(TypeError, self.publisher.display, 1, update=True)
        self.assertEqual(self.send.sent, [])

    def test_display_with_clear_replaces_the_output_without_flicker(self) -> None:
        self.publisher.display("frame", clear=True)
        [(first, content), (second, _)] = self.send.sent
        self.assertEqual((first, content), ("clear_output", {"wait": True}))
        self.assertEqual(second, "display_data")

    def test_clear_output(self) -> None:
        self.publisher.clear_output()
        self.publisher.clear_output(wait=True)
        self.assertEqual(
            self.send.sent,
            [("clear_output", {"wait": False}), ("clear_output", {"wait": True})],
        )

    def test_failing_repr_method_shows_its_error_and_does_not_stop_display(self) -> None:
        self.publisher.display(Failing())
        [(error_type, error), (data_type, content)] = self.send.sent
        self.assertEqual(error_type, "error")
        self.assertEqual(error["ename"], "ValueError")
        self.assertEqual(set(error), {"ename", "evalue", "traceback"})
        self.assertEqual(data_type, "display_data")
        self.assertEqual(
            content["data"], {"text/plain": "Failing()", "text/markdown": "*fine*"}
        )
        self.assertEqual(self.flushLoggedErrors(ValueError), [])
