"""Connection files: reading, validating, writing."""

from __future__ import annotations

import json
import os
import stat

from twisted.trial.unittest import SynchronousTestCase

from txkernel.connection import (
    ConnectionFileError,
    ConnectionInfo,
    read_connection_file,
    write_connection_file,
)

FULL = {
    "transport": "tcp",
    "ip": "127.0.0.1",
    "shell_port": 5001,
    "control_port": "5002",
    "stdin_port": 5003,
    "iopub_port": 5004,
    "hb_port": 5005,
    "key": "abc",
    "signature_scheme": "hmac-sha512",
    "kernel_name": "python3",
}


class ReadTests(SynchronousTestCase):
    def write(self, data) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(data if isinstance(data, str) else json.dumps(data))
        return path

    def test_every_field_is_read(self) -> None:
        info = read_connection_file(self.write(FULL))
        self.assertEqual(info.control_port, 5002)
        self.assertEqual(info.signature_scheme, "hmac-sha512")
        self.assertEqual(info.kernel_name, "python3")
        self.assertEqual(info.endpoint("iopub"), "tcp://127.0.0.1:5004")

    def test_ipc_endpoints_use_a_dash(self) -> None:
        info = read_connection_file(
            self.write(dict(FULL, transport="ipc", ip="/tmp/k"))
        )
        self.assertEqual(info.endpoint("shell"), "ipc:///tmp/k-5001")

    def assertOneLineError(self, path: str, text: str) -> None:
        error = self.assertRaises(ConnectionFileError, read_connection_file, path)
        self.assertIn(text, str(error))
        self.assertNotIn("\n", str(error))

    def test_errors_name_the_problem_in_one_line(self) -> None:
        self.assertOneLineError("/no/such/file.json", "no such file")
        self.assertOneLineError(self.write("{"), "not valid JSON")
        self.assertOneLineError(self.write([1]), "expected a JSON object")
        missing = dict(FULL)
        del missing["stdin_port"]
        self.assertOneLineError(self.write(missing), "missing field 'stdin_port'")
        self.assertOneLineError(
            self.write(dict(FULL, hb_port="x")), "'hb_port' is not a port number"
        )
        self.assertOneLineError(
            self.write(dict(FULL, transport="udp")), "unsupported transport"
        )
        self.assertOneLineError(
            self.write(dict(FULL, signature_scheme="rot13")), "signature_scheme"
        )
        no_key = dict(FULL)
        del no_key["key"]
        self.assertOneLineError(self.write(no_key), "missing field 'key'")


class WriteTests(SynchronousTestCase):
    def test_written_files_are_private_and_read_back(self) -> None:
        path = self.mktemp()
        info = ConnectionInfo().with_ports(
            {"shell": 1, "control": 2, "stdin": 3, "iopub": 4, "hb": 5}
        )
        write_connection_file(info, path)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(read_connection_file(path), info)

    def test_new_info_is_loopback_with_a_random_key(self) -> None:
        a, b = ConnectionInfo(), ConnectionInfo()
        self.assertEqual(a.ip, "127.0.0.1")
        self.assertEqual(a.signature_scheme, "hmac-sha256")
        self.assertNotEqual(a.key, b.key)
        self.assertGreaterEqual(len(a.key), 32)
