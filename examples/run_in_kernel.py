"""Run code in a fresh kernel from Twisted and print its output as it arrives.

    python examples/run_in_kernel.py python3 "print(6 * 7)"

Any installed kernelspec works (``jupyter kernelspec list``): ipykernel's
``python3``, txkernel's ``txkernel``, ...
"""

import sys

from twisted.internet import defer, task

from txkernel.manager import KernelManager


def show(msg):
    content = msg["content"]
    if msg["msg_type"] == "stream":
        sys.stdout.write(content["text"])
    elif msg["msg_type"] in ("execute_result", "display_data"):
        print(content["data"].get("text/plain", ""))
    elif msg["msg_type"] == "error":
        print("\n".join(content["traceback"]), file=sys.stderr)


async def main(reactor, kernel_name, code):
    manager = KernelManager(kernel_name)
    await manager.start()
    try:
        client = manager.client()
        await client.wait_for_ready()
        result = await client.execute(code, on_output=show, timeout=60)
        return 0 if result.content["status"] == "ok" else 1
    finally:
        await manager.shutdown()


if __name__ == "__main__":
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:3])))
