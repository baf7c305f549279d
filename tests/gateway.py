"""A real Jupyter Enterprise Gateway for one test.

Enterprise Gateway 3.3 pins jupyter_client<7, jupyter_server<2 and
pyzmq<25, so it runs from a virtualenv of its own (``.ci/gateway-venv``
makes it; ``.ci/run`` does so before the suite).  :func:`gateway_python`
finds that virtualenv (skipping the test without it, or building it in CI);
:func:`start_gateway` runs ``jupyter-enterprisegateway`` as a child process
on 127.0.0.1, a free port and a random token, with the given kernelspecs in
a private Jupyter environment.  The kernels it starts run in this
virtualenv's Python, so their command line names the gateway's runtime
directory (``--connection-dir``) and :class:`JupyterServer`'s process checks
find them.  Runs on the reactor thread; every wait is bounded.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from typing import Any

from twisted.internet import reactor
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SkipTest

from txkernel import remote_kernelspecs

from .helpers import REPO_ROOT, ProcessOutput
from .jupyter_server import (
    START_TIMEOUT,
    JupyterServer,
    KernelChannels,
    _cleanup,
    bounded,
    exited,
    interrupt_sleeping_cell,
)
from .sshd import free_port
from .test_jupyter_server import wait_until_ready

GATEWAY_VERSION = "3.3.0"
#: Where, in a gateway's root, Enterprise Gateway writes the kernel logs.
KERNEL_LOGS = "kernel-logs"
VENV_SCRIPT = os.path.join(REPO_ROOT, ".ci", "gateway-venv")


def _venv_dir() -> str:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.environ.get("TXKERNEL_GATEWAY_VENV") or os.path.join(
        cache, "txkernel", f"gateway-venv-{GATEWAY_VERSION}"
    )


async def gateway_python() -> str:
    """Fires with the Python of Enterprise Gateway's virtualenv.

    Outside CI a missing virtualenv skips the test (the message says how to
    make it); in CI it is made here (at most 10 minutes), as ``.ci/run``
    would have."""
    venv = _venv_dir()
    python = os.path.join(venv, "bin", "python")
    gateway = os.path.join(venv, "bin", "jupyter-enterprisegateway")
    if os.path.exists(gateway):
        return python
    if os.environ.get("CI") != "true":
        raise SkipTest(
            f"Enterprise Gateway is not installed in {venv} (run .ci/gateway-venv)"
        )
    await deferToThread(
        subprocess.run,
        ["bash", VENV_SCRIPT, venv],
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )
    return python


async def start_gateway(
    test: Any,
    specs: dict[str, str],
    environ: dict[str, str] | None = None,
    config: str = "",
    python: str | None = None,
    options: dict[str, Any] | None = None,
) -> JupyterServer:
    """Start Enterprise Gateway for ``test`` with txkernel's remote kernelspecs.

    ``specs`` maps kernelspec names to :data:`remote_kernelspecs.TARGETS`;
    each is installed with ``options`` (to
    :func:`remote_kernelspecs.install_remote`) and ``--ip 127.0.0.1
    --connection-dir <runtime dir>``.  ``environ`` adds to the gateway's
    environment, ``config`` is its ``jupyter_enterprise_gateway_config.py``.
    Fires with the running gateway (a :class:`JupyterServer`: same REST and
    websocket API) once it answers ``/api``; cleanup ends it and fails the
    test if a kernel process outlived it."""
    python = python or await gateway_python()
    root = os.path.abspath(test.mktemp())
    prefix = os.path.join(root, "prefix")
    runtime = os.path.join(root, "runtime")
    for name, target in specs.items():
        remote_kernelspecs.install_remote(
            target,
            name=name,
            prefix=prefix,
            extra_argv=["--ip", "127.0.0.1", "--connection-dir", runtime],
            **(options or {}),
        )
    token = secrets.token_hex(24)
    logs = os.path.join(root, KERNEL_LOGS)
    os.makedirs(logs)
    env = dict(os.environ)
    # The gateway's own interpreter, not the test virtualenv's.
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env.update(
        {
            "JUPYTER_PATH": os.path.join(prefix, "share", "jupyter"),
            "JUPYTER_CONFIG_DIR": os.path.join(root, "config"),
            "JUPYTER_DATA_DIR": os.path.join(root, "data"),
            "JUPYTER_RUNTIME_DIR": runtime,
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONUNBUFFERED": "1",
            "EG_RESPONSE_IP": "127.0.0.1",
            "EG_RESPONSE_PORT": str(free_port()),
            "EG_RESPONSE_PORT_RETRIES": "0",
            "EG_KERNEL_LOG_DIR": logs,
            "EG_KERNEL_LAUNCH_TIMEOUT": "40",
        }
    )
    env.update(environ or {})
    os.makedirs(env["JUPYTER_CONFIG_DIR"])
    path = os.path.join(
        env["JUPYTER_CONFIG_DIR"], "jupyter_enterprise_gateway_config.py"
    )
    with open(path, "w") as f:
        # The tests run as root, whom the gateway refuses by default.
        f.write("c.EnterpriseGatewayApp.unauthorized_users = set()\n" + config)
    server = JupyterServer(root, token, ProcessOutput())
    server.kernel_name = next(iter(specs))
    os.makedirs(server.notebook_dir)
    port = free_port()
    gateway = os.path.join(os.path.dirname(python), "jupyter-enterprisegateway")
    argv = [
        python,
        gateway,
        "--EnterpriseGatewayApp.ip=127.0.0.1",
        f"--EnterpriseGatewayApp.port={port}",
        "--EnterpriseGatewayApp.port_retries=0",
        f"--EnterpriseGatewayApp.auth_token={token}",
    ]
    server._process = reactor.spawnProcess(
        server.output, python, argv, env=env, path=root
    )
    test.addCleanup(_cleanup, test, server)
    try:
        await bounded(
            server.output.wait_for(r"Enterprise Gateway [\d.]+ is available at"),
            START_TIMEOUT,
            "Enterprise Gateway to start",
        )
    except Exception as e:
        raise AssertionError(f"{e}; the gateway said:\n{server.output.output}") from e
    server.url = f"http://127.0.0.1:{port}/"
    for _ in range(100):
        try:
            code, _ = await server.request("GET", "api", timeout=10)
        except ConnectionRefusedError:
            await deferLater(reactor, 0.1, lambda: None)
            continue
        if code == 200:
            return server
        raise AssertionError(f"GET /api answered {code}")
    raise AssertionError(f"the gateway did not listen:\n{server.output.output}")


async def exercise_remote_kernel(test: Any, server: JupyterServer) -> None:
    """Start, execute, interrupt, restart and shut down ``server.kernel_name``
    through ``server``'s REST and websocket API (Jupyter Server or
    Enterprise Gateway); no kernel process is left.  If a step fails, the
    failure carries what the gateway and the kernels logged."""
    try:
        await _exercise(test, server)
    except Exception as e:
        raise AssertionError(f"{e}\n{logged(server)}") from e


def logged(server: JupyterServer) -> str:
    """The gateway's output and each kernel log file (Enterprise Gateway
    writes the launcher's output to ``EG_KERNEL_LOG_DIR``)."""
    parts = [f"--- the gateway said:\n{server.output.output}"]
    logs = os.path.join(server.root, KERNEL_LOGS)
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        with open(os.path.join(logs, name), errors="replace") as f:
            parts.append(f"--- {name}:\n{f.read()}")
    return "\n".join(parts)


async def _exercise(test: Any, server: JupyterServer) -> None:
    code, model = await server.request(
        "POST", "api/kernels", {"name": server.kernel_name}, timeout=60
    )
    test.assertEqual(code, 201, f"{model}\n{server.output.output}")
    kernel_id = model["id"]
    channels = await KernelChannels.connect(test, server, kernel_id)
    info = await wait_until_ready(channels)
    test.assertEqual(info["implementation"], "txkernel")
    (first_pid,) = server.kernel_processes()

    msg_id = channels.execute(
        "import os\nprint('hello from', os.getpid())\nos.getpid()"
    )
    reply = await channels.reply_to(msg_id)
    test.assertEqual(reply["content"]["status"], "ok")
    await channels.status(msg_id, "idle")
    (result,) = [
        m for m in channels.iopub_for(msg_id) if m["msg_type"] == "execute_result"
    ]
    test.assertEqual(result["content"]["data"]["text/plain"], str(first_pid))
    streams = [
        m["content"] for m in channels.iopub_for(msg_id) if m["msg_type"] == "stream"
    ]
    test.assertEqual(
        "".join(s["text"] for s in streams if s["name"] == "stdout"),
        f"hello from {first_pid}\n",
    )

    # Interrupt: the provisioner sends {"signum": 2} to the launcher.
    code, reply = await interrupt_sleeping_cell(server, channels, kernel_id)
    test.assertEqual(code, 204)
    test.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")

    # Restart: the provisioner ends the launcher and starts a new one.
    code, model = await server.request(
        "POST", f"api/kernels/{kernel_id}/restart", timeout=60
    )
    test.assertEqual(code, 200, model)
    # The new launcher bound new ports: reconnect, as JupyterLab does
    # after every restart.
    await channels.close()
    channels = await KernelChannels.connect(test, server, kernel_id)
    await wait_until_ready(channels)
    (second_pid,) = server.kernel_processes()
    test.assertNotEqual(second_pid, first_pid)
    msg_id = channels.execute("'time' in globals()")
    reply = await channels.reply_to(msg_id)
    test.assertEqual(reply["content"]["execution_count"], 1)

    code, _ = await server.request("DELETE", f"api/kernels/{kernel_id}", timeout=60)
    test.assertEqual(code, 204)
    # A remote kernel is not the server's child: the provisioner knows
    # it is gone when its listener stops answering, which can be a
    # moment before the process has exited.
    await exited(server.kernel_processes(), 15)
    test.assertEqual(server.kernel_processes(), [])
