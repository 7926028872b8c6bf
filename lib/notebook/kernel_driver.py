"""Execute one notebook cell by cell on a tslab kernel and report each cell as a JSON line.

Called by lib/notebook/run.ts (the policy — which errors are allowed — lives there, not here).
Why our own driver instead of `jupyter nbconvert --execute`: tslab's error replies carry no message
(the TypeScript diagnostic goes to the cell's stderr stream), and after an error tslab aborts every
request that arrives within ~200 ms, which nbconvert would record as a silently skipped cell. Here an
aborted request is re-sent, and each cell's stderr is reported with its status.

Usage: python3 kernel_driver.py IN.ipynb OUT.ipynb --tslab PATH [--node NODE --preload JS] --cwd DIR --cell-timeout S
          [--continue-in 3,7,...]   (0-based cell indices whose errors do not stop the run)
stdout: one JSON object per line: {"event": "start"|"cell"|"done", ...}
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from queue import Empty

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

ABORT_RETRIES = 20


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def make_kernelspec(tmp, node, tslab, preload):
    # A private kernelspec pointing at this checkout's tslab, so the run never depends on
    # which tslab (or which checkout) happens to be registered with Jupyter. The preload serialises
    # the kernel's zeromq sends (see serial-zmq-sends.js).
    d = os.path.join(tmp, "tslab")
    os.makedirs(d)
    argv = ([node, "-r", preload, tslab] if preload else [tslab]) + ["kernel", "--config-path", "{connection_file}"]
    with open(os.path.join(d, "kernel.json"), "w") as f:
        json.dump({"argv": argv,
                   "display_name": "TypeScript", "language": "typescript"}, f)
    return KernelSpecManager(kernel_dirs=[tmp])


def run_cell(km, kc, code, timeout):
    """Returns (status, outputs, stderr_text). status: ok | error | abort | timeout | dead."""
    msg_id = kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
    outputs, stderr = [], []
    deadline = time.monotonic() + timeout
    status, idle = None, False
    while status is None or not idle:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout", outputs, "".join(stderr)
        if status is None:
            try:
                reply = kc.get_shell_msg(timeout=min(remaining, 0.05))
                if reply["parent_header"].get("msg_id") == msg_id:
                    status = reply["content"]["status"]
            except Empty:
                pass
        try:
            msg = kc.get_iopub_msg(timeout=min(max(remaining, 0.01), 0.05))
        except Empty:
            if not km.is_alive():
                # The kernel process exited (crash, out of memory): no reply will ever come.
                stderr.append("the tslab kernel process died while running this cell (its own error output, if any, is below)\n")
                return "dead", outputs, "".join(stderr)
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "status" and content["execution_state"] == "idle":
            idle = True
        elif kind == "stream":
            if content["name"] == "stderr":
                stderr.append(content["text"])
            if outputs and outputs[-1]["output_type"] == "stream" and outputs[-1]["name"] == content["name"]:
                outputs[-1]["text"] += content["text"]
            else:
                outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
        elif kind in ("display_data", "execute_result"):
            out = {"output_type": kind, "data": content["data"], "metadata": content.get("metadata", {})}
            if kind == "execute_result":
                out["execution_count"] = content.get("execution_count")
            transient = content.get("transient") or {}
            display_id = transient.get("display_id")
            if display_id:
                out["_display_id"] = display_id
            outputs.append(out)
        elif kind == "update_display_data":
            display_id = (content.get("transient") or {}).get("display_id")
            for out in outputs:
                if out.get("_display_id") == display_id:
                    out["data"], out["metadata"] = content["data"], content.get("metadata", {})
        elif kind == "clear_output":
            outputs.clear()
        elif kind == "error":
            outputs.append({"output_type": "error", "ename": content.get("ename", ""),
                            "evalue": content.get("evalue", ""), "traceback": content.get("traceback", [])})
            stderr.append("%s: %s\n" % (content.get("ename", ""), content.get("evalue", "")))
    for out in outputs:
        out.pop("_display_id", None)
    return status, outputs, "".join(stderr)


START_ATTEMPTS = 3


def start_kernel(args, tmp):
    """A ready tslab kernel and its client. tslab sometimes dies while it binds its sockets (zeromq: "Socket is
    blocked by a bind or unbind operation", EBUSY; seen once in ~30 starts on the 2-core machine): a kernel that dies
    before it is ready is started again, up to START_ATTEMPTS times; one that is alive but silent gets 120 s."""
    last = None
    for attempt in range(1, START_ATTEMPTS + 1):
        km = KernelManager(kernel_name="tslab", kernel_spec_manager=make_kernelspec(tmp, args.node, args.tslab, args.preload))
        km.start_kernel(cwd=args.cwd, env=dict(os.environ))
        kc = km.client()
        kc.start_channels()
        deadline = time.monotonic() + 120
        while True:
            try:
                kc.wait_for_ready(timeout=5)
                return km, kc
            except RuntimeError as e:
                last = e
                if not km.is_alive() or time.monotonic() > deadline:
                    break
        died = not km.is_alive()
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        print(f"[kernel_driver] the tslab kernel {'died' if died else 'did not answer'} before it was ready "
              f"(attempt {attempt} of {START_ATTEMPTS})", file=sys.stderr, flush=True)
    raise RuntimeError(f"the tslab kernel did not start in {START_ATTEMPTS} attempts: {last}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--tslab", required=True, help="tslab's bin script (a node script)")
    ap.add_argument("--node", default="node")
    ap.add_argument("--preload", default="")
    ap.add_argument("--cwd", required=True)
    ap.add_argument("--cell-timeout", type=float, default=1800)
    ap.add_argument("--continue-in", default="")
    args = ap.parse_args()
    keep_going = {int(i) for i in args.continue_in.split(",") if i != ""}

    with open(args.input, encoding="utf-8") as f:
        nb = json.load(f)
    tmp = tempfile.mkdtemp(prefix="tslab-spec-")
    t0 = time.monotonic()
    km, kc = start_kernel(args, tmp)
    try:
        emit({"event": "start", "seconds": time.monotonic() - t0})
        count = 0
        for index, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "code":
                continue
            code = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if code.strip() == "":
                continue
            t = time.monotonic()
            for _ in range(ABORT_RETRIES):
                status, outputs, stderr = run_cell(km, kc, code, args.cell_timeout)
                if status != "abort":
                    break
                time.sleep(0.25)  # tslab drops requests for 200 ms after an error
            count += 1
            cell["outputs"] = outputs
            cell["execution_count"] = count
            for out in outputs:
                if out["output_type"] == "execute_result":
                    out["execution_count"] = count
            emit({"event": "cell", "index": index, "status": status,
                  "seconds": time.monotonic() - t, "stderr": stderr})
            if status == "error":
                time.sleep(0.25)
            if status in ("timeout", "dead") or (status != "ok" and index not in keep_going):
                break
    finally:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(nb, f, indent=1, ensure_ascii=False)
            f.write("\n")
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        shutil.rmtree(tmp, ignore_errors=True)
    emit({"event": "done", "seconds": time.monotonic() - t0})


if __name__ == "__main__":
    main()
