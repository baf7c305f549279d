"""txkernel in JupyterLab, in a real browser, as a user meets it.

JupyterLab runs as a child process (see :mod:`tests.jupyter_server`) with the
txkernel kernelspec installed in a private prefix; Debian's Chromium, headless
in a new empty profile, is driven by Playwright's synchronous API on a
dedicated thread (Playwright's own browser download is not used).  The steps
click and type as a user does and check what the page shows: a notebook's
outputs, completion, interrupt and restart, then JupyterLab's visual
debugger on the restarted kernel (breakpoints, the call stack, variables,
Next and Continue, in a plain cell, in an ``await`` cell and in a function
a cell leaves to the reactor).  A failing step
leaves a screenshot in the test's temporary directory and names it in the
failure; every wait is bounded; the browser is closed by the step runner,
the server (and with it the kernel) by the test's cleanup.

Without ``/usr/bin/chromium`` the test is skipped, except under CI
(``CI=true``), where it must run: ``.ci/run`` installs Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from twisted.trial.unittest import SkipTest, TestCase

from .helpers import OtherThread
from .jupyter_server import JupyterServer, start_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DISPLAY_NAME = "Python 3 (txkernel)"
#: Where the launcher card's logo comes from: the installed kernelspec.
KERNELSPEC_LOGO = re.compile(r"/kernelspecs/txkernel-test/logo-[\w-]+\.(svg|png)$")

#: Milliseconds Playwright waits for any one thing the page should show.
STEP_TIMEOUT = 30_000
#: The file a cell runs as while the debugger is on (JupyterLab names the
#: cell by it; the kernel says where in ``debugInfo``).
CELL_FILE = re.compile(re.escape(tempfile.gettempdir()) + r"/txkernel_\d+/\d+\.py")

#: Milliseconds an interrupted ``time.sleep(60)`` may take to give the prompt back.
INTERRUPT_TIMEOUT = 15_000


def missing_browser() -> str | None:
    """Why the browser test cannot run here, or None if it can."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


class Lab:
    """The JupyterLab page, seen and driven by one user (runs on one thread)."""

    def __init__(self, page: Any, shots: str) -> None:
        from playwright.sync_api import expect

        self.page = page
        self.shots = shots
        self.expect = expect
        self.notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        self._steps = 0

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A named step: on failure, a screenshot named in the error."""
        self._steps += 1
        try:
            yield
        except Exception as e:
            path = os.path.join(self.shots, f"failed-{self._steps:02d}-{name}.png")
            try:
                self.page.screenshot(path=path)
                where = f"screenshot: {path}"
            except Exception as shot_error:
                where = f"no screenshot ({shot_error})"
            raise AssertionError(f"step {name!r} failed ({where}): {e}") from e

    def last_cell(self) -> Any:
        cells = self.notebook.locator(".jp-Cell")
        return cells.nth(cells.count() - 1)

    def type_into(self, cell: Any, code: str) -> None:
        """Replace the cell's source with ``code``, as pasted text (so that the
        editor's auto-indent and bracket closing leave it as written)."""
        cell.locator(".cm-content").click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.insert_text(code)

    def run(self, code: str) -> Any:
        """Type ``code`` into the last cell and press Shift+Enter; returns the cell."""
        cell = self.last_cell()
        self.type_into(cell, code)
        self.page.keyboard.press("Shift+Enter")
        return cell

    def run_done(self, code: str, count: int) -> Any:
        """:meth:`run`, then wait for the cell's prompt to say ``[count]:``."""
        cell = self.run(code)
        self.expect_prompt(cell, count)
        return cell

    def expect_prompt(
        self, cell: Any, count: int | str, timeout: int = STEP_TIMEOUT
    ) -> None:
        self.expect(cell.locator(".jp-InputPrompt")).to_have_text(
            f"[{count}]:", timeout=timeout
        )

    def expect_idle(self) -> None:
        self.expect(
            self.notebook.locator(".jp-Notebook-ExecutionIndicator")
        ).to_have_attribute("data-status", "idle")

    def outputs(self, cell: Any) -> Any:
        return cell.locator(".jp-OutputArea-output")

    def click_gutter(self, cell: Any, line: int) -> None:
        """Click the breakpoint gutter beside ``line`` (from 1) of ``cell``."""
        # CodeMirror puts a hidden spacer first: line N is element N.
        cell.locator(".cm-breakpoint-gutter > .cm-gutterElement").nth(line).click(
            position={"x": 5, "y": 5}
        )


class Debugger:
    """JupyterLab's debugger sidebar, as the user sees it."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.sidebar = lab.page.locator("#jp-debugger-sidebar")
        self.frames = self.sidebar.locator(
            ".jp-DebuggerCallstack-body .jp-DebuggerCallstackFrame"
        )
        self.breakpoints = self.sidebar.locator(".jp-DebuggerBreakpoint")
        self.scope = self.sidebar.locator('select[aria-label="Scope"]')
        #: The line the debugger stopped on, highlighted in its cell's editor.
        self.current_line = lab.notebook.locator(".jp-DebuggerEditor-highlight")

    def command(self, name: str) -> None:
        """Click a call stack toolbar button: ``next``, ``continue``, ..."""
        self.sidebar.locator(f'jp-button[data-command="debugger:{name}"]').click()

    def expect_variable(self, name: str, value: str) -> None:
        """The variables panel (tree view) shows ``name`` with ``value``."""
        item = self.sidebar.locator(
            ".jp-DebuggerVariables-body:not(.lm-mod-hidden) .jp-TreeItem"
        ).filter(
            has=self.lab.page.locator(".jp-DebuggerVariables-name").get_by_text(
                name, exact=True
            )
        )
        self.lab.expect(item.locator(".jp-DebuggerVariables-detail")).to_have_text(
            value
        )

    def expect_stopped(self, cell: Any, frames: list[tuple[str, int]]) -> str:
        """Stopped in ``cell``: the call stack lists ``frames`` (name, line),
        innermost first, all in the cell's file; returns that file."""
        expect = self.lab.expect
        expect(self.frames).to_have_count(len(frames))
        names = self.frames.locator(".jp-DebuggerCallstackFrame-name")
        expect(names).to_have_text([name for name, _ in frames])
        locations = self.frames.locator(".jp-DebuggerCallstackFrame-location")
        path = locations.first.get_attribute("title")
        assert path and CELL_FILE.fullmatch(path), f"a frame in {path!r}"
        expect(locations).to_have_text([f"{path}:{line}" for _, line in frames])
        self.lab.expect_prompt(cell, "*")
        return path

    def step_through(
        self,
        code: str,
        line: int,
        breakpoints: int,
        frames: list[tuple[str, int]],
        stops: list[tuple[str, dict[str, str]]],
        prompt: int,
        output: str,
    ) -> None:
        """Type ``code`` into the last cell, set a breakpoint on ``line`` (then
        ``breakpoints`` are set in all) and run it: stopped in ``frames``.  At
        each of ``stops`` (the highlighted line, variables the panel shows)
        Next goes on to the following one; after the last, Continue: the cell
        ends as ``[prompt]`` with ``output``, the kernel idle."""
        lab, expect = self.lab, self.lab.expect
        cell = lab.last_cell()
        lab.type_into(cell, code)
        lab.click_gutter(cell, line)
        expect(self.breakpoints).to_have_count(breakpoints)
        lab.page.keyboard.press("Shift+Enter")
        self.expect_stopped(cell, frames)
        for i, (text, variables) in enumerate(stops):
            if i:
                self.command("next")
            expect(self.current_line).to_have_text(text)
            for name, value in variables.items():
                self.expect_variable(name, value)
        self.command("continue")
        lab.expect_prompt(cell, prompt)
        expect(lab.outputs(cell)).to_have_text(output)
        lab.expect_idle()
        expect(self.frames).to_have_count(0)


def drive(url: str, shots: str, kernel_processes: Callable[[], list[int]]) -> list[str]:
    """Open JupyterLab at ``url`` and go through the steps; returns the names
    of the steps done.  Runs on a thread of its own; closes the browser."""
    from playwright.sync_api import sync_playwright

    done: list[str] = []
    profile = tempfile.mkdtemp(prefix="txkernel-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1100, "height": 760},
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.set_default_timeout(STEP_TIMEOUT)
                lab = Lab(page, shots)
                lab.expect.set_options(timeout=STEP_TIMEOUT)
                _steps(lab, url, kernel_processes, done)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return done


def _steps(
    lab: Lab, url: str, kernel_processes: Callable[[], list[int]], done: list[str]
) -> None:
    page, expect, notebook = lab.page, lab.expect, lab.notebook

    with lab.step("launcher"):
        page.goto(url)
        card = page.locator(
            f'.jp-LauncherCard[data-category="Notebook"][title="{DISPLAY_NAME}"]'
        )
        expect(card).to_be_visible()
        expect(
            page.locator(
                f'.jp-LauncherCard[data-category="Console"][title="{DISPLAY_NAME}"]'
            )
        ).to_be_visible()
        logo = card.locator("img")
        expect(logo).to_have_attribute("src", KERNELSPEC_LOGO)
        assert logo.evaluate("img => img.complete && img.naturalWidth > 0"), (
            "the txkernel logo did not load"
        )
        done.append("launcher")

    with lab.step("new-notebook"):
        card.click()
        expect(notebook.locator(".jp-KernelName")).to_have_text(DISPLAY_NAME)
        lab.expect_idle()
        done.append("new notebook")

    with lab.step("expression"):
        cell = lab.run_done("1+1", 1)
        expect(lab.outputs(cell)).to_have_text("2")
        expect(cell.locator(".jp-OutputPrompt")).to_have_text("[1]:")
        done.append("1+1")

    with lab.step("completion"):
        lab.run_done("import collections", 2)
        cell = lab.last_cell()
        lab.type_into(cell, "collections.de")
        page.keyboard.press("Tab")
        completer = page.locator(".jp-Completer")
        items = completer.locator(".jp-Completer-item")
        expect(items.filter(has_text="deque")).to_be_visible()
        expect(items.filter(has_text="defaultdict")).to_be_visible()
        # The completer takes keys once it has an item selected.
        expect(completer.locator(".jp-Completer-item.jp-mod-active")).to_be_visible()
        # Each item shows its name and, from the kernel's type metadata, its type.
        names = items.locator(".jp-Completer-match").all_text_contents()
        for _ in range(names.index("deque")):
            page.keyboard.press("ArrowDown")
        expect(
            completer.locator(".jp-Completer-item.jp-mod-active .jp-Completer-match")
        ).to_have_text("deque")
        expect(
            completer.locator(
                ".jp-Completer-item.jp-mod-active .jp-Completer-typeExtended"
            )
        ).to_have_text("class")
        page.keyboard.press("Enter")
        expect(completer).to_be_hidden()
        expect(cell.locator(".cm-content")).to_have_text("collections.deque")
        done.append("Tab completion")

    with lab.step("tooltip"):
        page.keyboard.insert_text("(")
        page.keyboard.press("Shift+Tab")
        tooltip = page.locator(".jp-Tooltip")
        expect(tooltip).to_contain_text("deque([iterable[, maxlen]])")
        page.keyboard.press("Escape")
        expect(tooltip).to_be_hidden()
        done.append("Shift+Tab tooltip")

    with lab.step("await-deferred"):
        cell = lab.last_cell()
        lab.type_into(
            cell,
            "from twisted.internet import reactor, task\n"
            "await task.deferLater(reactor, 0.1, lambda: 'from the reactor')",
        )
        page.keyboard.press("Shift+Enter")
        lab.expect_prompt(cell, 3)
        expect(lab.outputs(cell)).to_have_text("'from the reactor'")
        done.append("await on a Deferred")

    with lab.step("print-loop"):
        cell = lab.run_done("for i in range(1000):\n    print('line', i)", 4)
        text = "".join(lab.outputs(cell).all_text_contents())
        lines = text.splitlines()
        assert lines == [f"line {i}" for i in range(1000)], (
            f"{len(lines)} lines shown, first {lines[:2]}, last {lines[-2:]}"
        )
        done.append("1,000 printed lines")

    with lab.step("html"):
        cell = lab.run_done(
            "class Bold:\n"
            "    def _repr_html_(self):\n"
            "        return '<b>bold</b> and <i>italic</i>'\n"
            "display(Bold())",
            5,
        )
        html = cell.locator('.jp-OutputArea-output[data-mime-type="text/html"]')
        expect(html.locator("b")).to_have_text("bold")
        expect(html.locator("i")).to_have_text("italic")
        done.append("HTML display")

    with lab.step("traceback"):
        cell = lab.run_done("def f():\n    return 1 / 0\nf()", 6)
        error = cell.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        )
        expect(error).to_contain_text("Traceback (most recent call last)")
        expect(error).to_contain_text("return 1 / 0")
        expect(error).to_contain_text("ZeroDivisionError: division by zero")
        done.append("error with traceback")

    with lab.step("input"):
        cell = lab.run("name = input('Your name? ')\nprint('hello', name)")
        box = cell.locator(".jp-Stdin-input")
        expect(cell.locator(".jp-Stdin-prompt")).to_contain_text("Your name?")
        box.fill("Twisted")
        box.press("Enter")
        lab.expect_prompt(cell, 7)
        expect(cell.locator(".jp-OutputArea")).to_contain_text("hello Twisted")
        done.append("input() answered in the page")
        # The view of the notebook the README shows (HTML, traceback, input).
        notebook.screenshot(path=os.path.join(lab.shots, "notebook.png"))

    with lab.step("interrupt"):
        (pid,) = kernel_processes()
        cell = lab.run("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
        expect(cell.locator(".jp-OutputArea")).to_contain_text("sleeping")
        lab.expect_prompt(cell, "*")
        notebook.locator('jp-button[data-command="notebook:interrupt-kernel"]').click()
        lab.expect_prompt(cell, 8, timeout=INTERRUPT_TIMEOUT)
        expect(cell.locator(".jp-OutputArea")).to_contain_text("KeyboardInterrupt")
        lab.expect_idle()
        cell = lab.run_done("print(name)", 9)
        expect(lab.outputs(cell)).to_have_text("Twisted")
        assert kernel_processes() == [pid], "the interrupt changed the kernel process"
        done.append("Interrupt from the toolbar")

    with lab.step("restart"):
        page.locator(".lm-MenuBar-item", has_text="Kernel").click()
        page.locator(".lm-Menu-item", has_text="Restart Kernel…").first.click()
        dialog = page.locator(".jp-Dialog")
        expect(dialog).to_contain_text("Restart Kernel?")
        dialog.locator(".jp-mod-accept").click()
        expect(dialog).to_be_hidden()
        cell = lab.run_done("'name' in globals()", 1)
        expect(lab.outputs(cell)).to_have_text("False")
        lab.expect_idle()
        (new_pid,) = kernel_processes()
        assert new_pid != pid, "the kernel process was not restarted"
        done.append("Restart from the menu")

    _debugger_steps(lab, done)


def _debugger_steps(lab: Lab, done: list[str]) -> None:
    """JupyterLab's visual debugger on the restarted kernel (whose last cell
    was ``[1]``): a breakpoint in a function, then one after an ``await``,
    then one in a function the cell leaves to the reactor."""
    page, expect, notebook = lab.page, lab.expect, lab.notebook
    debugger = Debugger(lab)

    with lab.step("debugger-on"):
        # Room for the notebook beside the debugger: fold the file browser away.
        page.locator(
            '.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="filebrowser"]'
        ).click()
        expect(page.locator("#filebrowser")).to_be_hidden()
        bug = notebook.locator(".jp-Toolbar .jp-DebuggerBugButton")
        # Enabled once the kernel said it has a debugger.
        expect(bug).to_be_enabled()
        expect(bug).to_have_attribute("title", "Enable Debugger")
        bug.click()
        expect(bug).to_have_attribute("aria-pressed", "true")
        expect(debugger.sidebar).to_be_visible()
        for panel in ("Variables", "Callstack", "Breakpoints"):
            expect(debugger.sidebar.locator(f".jp-Debugger{panel}")).to_be_visible()
        expect(debugger.frames).to_have_count(0)
        done.append("debugger on")

    with lab.step("debugger-breakpoint"):
        cell = lab.last_cell()
        lab.type_into(
            cell,
            "def double(x):\n"
            "    y = x * 2\n"
            "    y = y + 1\n"
            "    return y\n"
            "print(double(20))",
        )
        lab.click_gutter(cell, 2)
        expect(debugger.breakpoints).to_have_count(1)
        expect(
            debugger.breakpoints.locator(".jp-DebuggerBreakpoint-line")
        ).to_have_text("2")
        page.keyboard.press("Shift+Enter")
        path = debugger.expect_stopped(cell, [("double", 2), ("<module>", 5)])
        # The breakpoint JupyterLab set is in the file the kernel runs the cell as.
        expect(
            debugger.breakpoints.locator(".jp-DebuggerBreakpoint-source")
        ).to_have_text(path)
        expect(debugger.current_line).to_have_text("    y = x * 2")
        expect(debugger.scope).to_have_value("Locals")
        debugger.expect_variable("x", "20")
        done.append("stopped at a breakpoint")

    with lab.step("debugger-next"):
        debugger.command("next")
        expect(debugger.current_line).to_have_text("    y = y + 1")
        debugger.expect_variable("y", "40")
        debugger.expect_variable("x", "20")
        # The view of the debugger the README shows.
        page.screenshot(path=os.path.join(lab.shots, "debugger.png"))
        done.append("step over")

    with lab.step("debugger-evaluate"):
        # The debug console evaluates in the stopped frame.
        debugger.command("evaluate")
        console = page.locator(".jp-DebugConsole-widget")
        prompt = console.locator(".jp-CodeConsole-promptCell .cm-content")
        prompt.click()
        page.keyboard.insert_text("x + y")
        page.keyboard.press("Shift+Enter")
        expect(console.locator(".jp-OutputArea-child").last).to_have_text("60")
        debugger.command("evaluate")
        expect(console).to_be_hidden()
        done.append("evaluate in the frame")

    with lab.step("debugger-continue"):
        debugger.command("continue")
        lab.expect_prompt(cell, 2)
        expect(lab.outputs(cell)).to_have_text("41")
        lab.expect_idle()
        expect(debugger.frames).to_have_count(0)
        done.append("continue")

    with lab.step("debugger-await"):
        debugger.step_through(
            "from twisted.internet import reactor, task\n"
            "ticks = await task.deferLater(reactor, 0.1, lambda: 7)\n"
            "ticks = ticks * 6\n"
            "print('ticks', ticks)",
            line=3,
            breakpoints=2,
            frames=[("<module>", 3)],
            stops=[
                ("ticks = ticks * 6", {"ticks": "7"}),
                ("print('ticks', ticks)", {"ticks": "42"}),
            ],
            prompt=3,
            output="ticks 42",
        )
        done.append("await cell stepped")

    with lab.step("debugger-reactor-call"):
        # A function the cell leaves to the reactor stops and is stepped
        # (on a thread of its own) while the cell awaits what it fires.
        debugger.step_through(
            "from twisted.internet import reactor, defer\n"
            "done = defer.Deferred()\n"
            "def later(a):\n"
            "    b = a * 2\n"
            "    done.callback(b)\n"
            "reactor.callLater(0.1, later, 21)\n"
            "print('got', await done)",
            line=4,
            breakpoints=3,
            frames=[("later", 4)],
            stops=[("    b = a * 2", {"a": "21"}), ("    done.callback(b)", {"b": "42"})],
            prompt=4,
            output="got 42",
        )
        done.append("reactor call stepped")


class JupyterLabTests(TestCase):
    timeout = 240

    async def test_a_notebook_in_jupyterlab(self) -> None:
        reason = missing_browser()
        if reason is not None:
            if os.environ.get("CI") == "true":
                self.fail(f"{reason}: the browser test must run in CI")
            raise SkipTest(reason)
        server: JupyterServer = await start_server(self, "jupyterlab")
        shots = os.path.abspath(self.mktemp())
        os.makedirs(shots)
        thread = OtherThread(self)
        try:
            done = await thread.run(
                drive,
                f"{server.url}lab?token={server.token}",
                shots,
                server.kernel_processes,
            )
        except AssertionError as e:
            self.fail(str(e))
        self.assertEqual(
            done,
            [
                "launcher",
                "new notebook",
                "1+1",
                "Tab completion",
                "Shift+Tab tooltip",
                "await on a Deferred",
                "1,000 printed lines",
                "HTML display",
                "error with traceback",
                "input() answered in the page",
                "Interrupt from the toolbar",
                "Restart from the menu",
                "debugger on",
                "stopped at a breakpoint",
                "step over",
                "evaluate in the frame",
                "continue",
                "await cell stepped",
                "reactor call stepped",
            ],
        )
