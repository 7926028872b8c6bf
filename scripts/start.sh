#!/usr/bin/env bash
# Opens the course: a Jupyter server on 127.0.0.1 at notebooks/, with the tslab kernel (registered by setup.sh).
# JupyterLab when it is installed, else the classic Notebook.   PORT=8888 by default; extra arguments go to Jupyter.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
for cand in /usr/bin/python3 python3; do
  if "$cand" -c 'import jupyter_client' >/dev/null 2>&1; then PY="$cand"; break; fi
done
args=(--ip=127.0.0.1 --port="${PORT:-8888}" --notebook-dir="$PWD/notebooks")
[ "$(id -u)" = 0 ] && args+=(--allow-root)
if "$PY" -m jupyterlab --version >/dev/null 2>&1; then
  echo "[start] JupyterLab at http://127.0.0.1:${PORT:-8888}/ (kernel: TypeScript / tslab). Ctrl-C stops it."
  exec "$PY" -m jupyterlab "${args[@]}" "$@"
else
  echo "[start] classic Jupyter Notebook at http://127.0.0.1:${PORT:-8888}/ (kernel: TypeScript / tslab). Ctrl-C stops it."
  echo "[start] (JupyterLab is not installed; with internet: pip install jupyterlab — see README)"
  exec "$PY" -m notebook "${args[@]}" "$@"
fi
