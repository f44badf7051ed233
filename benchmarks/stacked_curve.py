"""Learning curve of one Stacked MNIST trial: score the EMA generator kept in each training state.

`ganforge modes --rescore OUT` scores a trial's final generator. This scores the intermediate ones,
from the resumable states in the run's ``checkpoints/`` folder (or state files given by path), with
the same protocol: 26,000 samples, latent seed 10000 + the trial's seed, `mnist-clf` channel by
channel. A trial keeps every state when it is run with ``checkpoint.every_steps`` and a large
``checkpoint.keep_last``, e.g.

    ganforge modes --benchmark stacked-mnist --method best --steps 64000 --trials 1 --seed 0 \\
        --set checkpoint.every_steps=8000 --set checkpoint.keep_last=100 --out OUT --json
    .venv/bin/python benchmarks/stacked_curve.py OUT/runs/stacked-mnist-best-seed0 [STATE.pt ...]

One JSON line per state: step, modes, KL, the three channel KLs and the dependence term (see
`StackedStats`). The step's learning rate is not its final one: a state taken mid-trial is scored
before the LR schedule has decayed to the end.

``--confidence`` adds how sure `mnist-clf` is of the digits it reads (`confidence_summary`), to tell
a generator that draws too many 7s from one whose ambiguous digits the classifier reads as 7s: the
share of digits read with a softmax maximum under 0.9, and each channel's KL from the mean softmax
(soft counts) and from the confident digits alone. The same 26,000 samples and argmax as above.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

import torch
from torch import Tensor

LOW_CONFIDENCE = 0.9  # a digit whose softmax maximum is under this is "ambiguous" (1.6 % of the MNIST test set)


def usage_error(message: str) -> NoReturn:
    """A user's mistake: one line on stderr, exit status 2 (as `ganforge` and benchmarks/stacked_long.py)."""
    print(f"stacked_curve: error: {message}", file=sys.stderr)
    sys.exit(2)


def confidence_summary(probs: Tensor, threshold: float = LOW_CONFIDENCE) -> dict:
    """probs (N, 3, 10): mnist-clf's softmax for each channel (R, G, B) of N generated images →
    low_confidence (share of the 3N digits whose maximum is under `threshold`), soft_channel_kl (each
    channel's KL to uniform from its mean softmax) and confident_channel_kl (from the argmax of the
    digits at or above `threshold` only; an easy digit such as 1 is over-counted there)."""
    from ganforge.modes.metrics import reverse_kl

    conf, digit = probs.max(dim=2)  # (N, 3) each
    sure = conf >= threshold
    soft = [reverse_kl(probs[:, c].mean(dim=0)) for c in range(3)]
    hard = []
    for c in range(3):
        counts = torch.bincount(digit[sure[:, c], c], minlength=10).double()  # (10,)
        hard.append(reverse_kl(counts) if counts.sum() > 0 else float("nan"))
    return {"low_confidence": round(float((~sure).double().mean()), 4),
            "soft_channel_kl": [round(v, 4) for v in soft], "confident_channel_kl": [round(v, 4) for v in hard]}


def classify_probs(G, clf, seed: int, z_dim: int) -> Tensor:
    """The protocol's 26,000 samples (latent seed 10000 + seed) → mnist-clf softmax (N, 3, 10)."""
    from ganforge.modes.stacked import N_EVAL_SAMPLES, sample_generator

    x = sample_generator(G, N_EVAL_SAMPLES, z_dim, seed=10_000 + seed, device="cpu")  # (N, 3, 28, 28)
    probs = [clf(chunk.reshape(-1, 1, 28, 28)).softmax(dim=1).view(-1, 3, 10) for chunk in x.split(1000)]
    return torch.cat(probs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a Stacked MNIST trial's run folder (OUT/runs/stacked-mnist-METHOD-seedS)")
    ap.add_argument("states", type=Path, nargs="*", help="state files (default: every state-*.pt in RUN/checkpoints)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--confidence", action="store_true", help="add how sure mnist-clf is of the digits (see above)")
    args = ap.parse_args(argv)
    if args.threads < 1:
        usage_error(f"--threads {args.threads}: must be at least 1")

    from ganforge.config import read_run_config
    from ganforge.errors import GanforgeError
    from ganforge.evaluators import load_evaluator
    from ganforge.models import build_generator
    from ganforge.modes.stacked import modes_of_digits, score_generator, stacked_stats
    from ganforge.training.checkpoint import load_state_file

    try:
        cfg = read_run_config(args.run / "config.json")
    except GanforgeError as exc:
        usage_error(str(exc))
    states = args.states or sorted((args.run / "checkpoints").glob("state-*.pt"))
    if not states:
        usage_error(f"no state-*.pt in {str(args.run / 'checkpoints')!r}: give state files by path")
    torch.set_num_threads(args.threads)
    clf = load_evaluator("mnist-clf")
    G = build_generator(cfg.model)
    for path in states:
        try:
            state = load_state_file(path)
        except (OSError, RuntimeError, GanforgeError) as exc:  # missing, truncated, not a state
            usage_error(f"{str(path)!r} is not a readable training state ({(str(exc).splitlines() or [type(exc).__name__])[0]})")
        if not state.get("ema"):
            usage_error(f"{str(path)!r} holds no EMA generator (the protocol scores G's EMA)")
        try:
            G.load_state_dict(state["ema"]["model"])
        except RuntimeError as exc:  # another trial's architecture (width, channels)
            usage_error(f"{str(path)!r} is not a state of {str(args.run)!r}'s generator ({str(exc).splitlines()[0]})")
        G.eval()
        extra = {}
        with torch.no_grad():
            if args.confidence:  # one pass: the modes are the softmax's argmax, as score_generator reads them
                probs = classify_probs(G, clf, cfg.train.seed, cfg.model.z_dim)
                s = stacked_stats(modes_of_digits(probs.argmax(dim=2)))
                extra = confidence_summary(probs)
            else:
                s, _ = score_generator(G, clf, cfg.train.seed, cfg.model.z_dim, "cpu")
        print(json.dumps({"state": path.name, "step": int(state["step"]), "modes": s.modes, "kl": round(s.kl, 4),
                          "channel_kl": [round(c, 4) for c in s.channel_kl], "kl_dependence": round(s.kl_dependence, 4),
                          **extra}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
