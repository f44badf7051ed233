#!/usr/bin/env bash
# The first, short call of a lent GPU (about two minutes): does each CUDA path of ganforge run at
# all (none had run on a GPU before), and how fast is each job, so that the one long call that
# follows (benchmarks/gpu_session.py run) is sized from measurements, not guesses.
#
# Here:   .venv/bin/python benchmarks/gpu_session.py prepare
# There (device tool, carry [".gpu"], timeout_s 240):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/whl/*.whl && bash benchmarks/gpu_probe.sh
#
# Everything goes to $OUT/probe.log (the JSON of each command inline) and $OUT/rs/ (the restoration
# smoke plan's summary and logs). Each command has its own timeout, so one failure costs only itself.
set -u
DEV=${DEV:-cuda} N=${N:-300}  # DEV=cpu N=20 checks this script on a CPU
export PYTHONPATH=src:/tmp/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
L=$OUT/probe.log
gf() { local t=$1; shift; timeout "$t" python3 -m ganforge "$@"; echo "rc=$?"; }
stacked() {  # seed steps -> a Stacked MNIST `best` trial at the preset's width and batch
    gf 150 modes --benchmark stacked-mnist --method best --trials 1 --seed "$1" --steps "$2" --device "$DEV" --threads 2 \
        --json --out "/tmp/probe/stacked-$1-$2-$3" >"/tmp/probe/stacked-$1-$2-$3.json" 2>&1
    tail -1 /tmp/probe/stacked-"$1"-"$2"-"$3"/runs/*/metrics.jsonl
}
mkdir -p /tmp/probe
{
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"
    git log --oneline -1 2>/dev/null || cat .gpu/commit.txt
    echo "== bench train sngan-cifar10 b64 (preset fast path)"
    gf 90 bench train --preset sngan-cifar10 --batch 64 --device "$DEV" --steps 10 --repeats 3 --json
    echo "== bench train dcgan64 b64"
    gf 90 bench train --preset dcgan-cifar10 --set model.resolution=64 --batch 64 --device "$DEV" --steps 10 --repeats 3 --json
    echo "== stacked best 300 steps alone"
    stacked 0 "$N" alone
    echo "== concurrently: 3 stacked trials, the restoration smoke plan, the CUDA tests, a compiled bench"
    for s in 1 2 3; do (stacked "$s" "$N" shared > "/tmp/probe/tail-$s.txt") & done
    (timeout 150 python3 benchmarks/gpu_session.py run --out "$OUT/rs" --minutes 0.5 --wall 140 --jobs sr,denoise,inpaint \
        --device "$DEV" $([ "$DEV" = cpu ] && echo --smoke) --skip-tests --runs /tmp/probe/rs >/dev/null 2>&1; echo "restoration plan rc=$?") &
    (timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_restore_train.py tests/test_metrics.py -k cuda \
        > "$OUT/cuda-tests.log" 2>&1; echo "cuda tests rc=$?") &
    (echo "== compiled bench (sngan b64, perf.compile=true)";
     gf 150 bench train --preset sngan-cifar10 --batch 64 --device "$DEV" --steps 10 --repeats 3 --json --set perf.compile=true \
        > /tmp/probe/compile.txt 2>&1) &
    wait
    for s in 1 2 3; do echo "-- stacked seed $s (shared)"; cat "/tmp/probe/tail-$s.txt"; done
    for f in /tmp/probe/stacked-*.json; do echo "-- $f"; tail -c 1500 "$f"; done
    echo "-- compiled bench"; tail -c 4000 /tmp/probe/compile.txt
    date -u +%FT%TZ
} >"$L" 2>&1
tail -c 3000 "$L"
