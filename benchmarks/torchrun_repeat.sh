#!/usr/bin/env bash
# Launch the tiny 2-process torchrun training of tests/test_ddp.py N times and count failed launches
# (docs/RELIABILITY.md, "Multi-process runs": a rank aborting in gloo's teardown after finishing).
#   benchmarks/torchrun_repeat.sh 30      # ~10 s per launch on the 2-core CPU
# A failed launch's folder (its out.txt / err.txt) is kept under $TMPDIR and named; the rest are removed.
set -uo pipefail
N=${1:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
fails=0
for i in $(seq 1 "$N"); do
  d=$(mktemp -d)
  port=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  (cd "$d" && PYTHONFAULTHANDLER=1 OMP_NUM_THREADS=1 PYTHONPATH="$ROOT/src" "$PY" -m torch.distributed.run \
    --nproc_per_node 2 --master_port "$port" -m ganforge train --preset dcgan-mnist --data digits \
    --set model.resolution=16 --set model.g_width=8 --set model.d_width=8 --set train.total_steps=3 \
    --set train.batch_size=32 --set train.progress=false --set train.sample_grid=4 --set train.threads=1 \
    --out run > out.txt 2> err.txt)
  rc=$?
  if [ "$rc" -ne 0 ]; then fails=$((fails + 1)); echo "launch $i: exit $rc, kept $d"; else rm -rf "$d"; fi
done
echo "failed launches: $fails of $N"
