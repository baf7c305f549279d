"""Post-import hooks (txkernel.python.imports), on throwaway modules."""

from __future__ import annotations

import importlib
import os
import sys

from twisted.trial.unittest import TestCase

from txkernel.python import imports


class WhenImportedTests(TestCase):
    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        sys.path.insert(0, self.dir)
        self.addCleanup(sys.path.remove, self.dir)
        importlib.invalidate_caches()

    def module(self, name: str, source: str = "VALUE = 1\n") -> str:
        with open(os.path.join(self.dir, name + ".py"), "w") as f:
            f.write(source)
        self.addCleanup(sys.modules.pop, name, None)
        return name

    def test_the_hook_runs_once_the_module_has_run(self) -> None:
        name = self.module("txk_hooked_a")
        seen = []
        imports.when_imported(name, lambda m: seen.append(m.VALUE))
        self.assertEqual(seen, [])
        module = importlib.import_module(name)
        self.assertEqual(seen, [1])
        self.assertEqual(type(module.__loader__).__name__, "SourceFileLoader")
        self.assertNotIn("exec_module", vars(module.__loader__), "the loader is left as it was")
        importlib.reload(module)
        self.assertEqual(seen, [1], "a hook runs once")

    def test_an_imported_module_runs_the_hook_at_once(self) -> None:
        name = self.module("txk_hooked_b")
        importlib.import_module(name)
        seen = []
        imports.when_imported(name, seen.append)
        self.assertEqual(seen, [sys.modules[name]])

    def test_a_failing_hook_is_logged_and_the_import_succeeds(self) -> None:
        name = self.module("txk_hooked_c")
        imports.when_imported(name, lambda m: 1 / 0)
        self.assertEqual(importlib.import_module(name).VALUE, 1)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_a_forgotten_hook_does_not_run_and_a_missing_module_still_fails(self) -> None:
        name = self.module("txk_hooked_d")
        seen = []
        imports.when_imported(name, seen.append)
        imports.when_imported("txk_not_there", seen.append)
        imports.forget(name, seen.append)
        importlib.import_module(name)
        self.assertEqual(seen, [])
        with self.assertRaises(ImportError):
            importlib.import_module("txk_not_there")
        imports.forget("txk_not_there", seen.append)
        self.assertNotIn(imports._finder, sys.meta_path)
