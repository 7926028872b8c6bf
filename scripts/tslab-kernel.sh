#!/usr/bin/env bash
# The tslab kernel as Jupyter starts it (registered by setup.sh), with lib/notebook/serial-zmq-sends.js preloaded:
# tslab 1.0.22 does not await its zeromq sends, and under load two sends collide (EBUSY) and kill the kernel.
ROOT="$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)"
exec node -r "$ROOT/lib/notebook/serial-zmq-sends.js" "$ROOT/node_modules/tslab/bin/tslab" "$@"
