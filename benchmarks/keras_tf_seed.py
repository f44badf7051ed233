"""The TensorFlow/Keras DCGAN tutorial (the "seed system") against ganforge's keras-dcgan-mnist, side by side.

The TF side is the tutorial's code, unchanged: the same two Sequential models, BinaryCrossentropy
from logits, Adam(1e-4) for both nets and the ``@tf.function train_step`` over a
``tf.data`` pipeline of the digits (shuffled, batched). It runs in a subprocess with a Python
that has TensorFlow (``--tf-python``; TensorFlow is not a ganforge dependency). The torch side is
``ganforge bench train --preset keras-dcgan-mnist`` (its eager fp32 reference and ganforge's
step) with the perf switches given by ``--set``. Rounds alternate TF / torch so both see the same
machine state; the figures are medians over rounds.

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu==2.21.0
    python benchmarks/keras_tf_seed.py --tf-python /tmp/tfvenv/bin/python --rounds 3 \
        --set perf.precision=auto --set perf.channels_last=true --set perf.fast_dropout=true
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

import torch

from ganforge.bench.run import bench_train
from ganforge.presets import get_preset

TF_TUTORIAL = r'''
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
from tensorflow.keras import layers

BATCH_SIZE, noise_dim, steps, repeats, warmup = 256, 100, int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
train_images = np.load(sys.argv[4])  # (N, 28, 28, 1) float32 in [-1, 1]

def make_generator_model():
    model = tf.keras.Sequential()
    model.add(layers.Input(shape=(100,)))
    model.add(layers.Dense(7*7*256, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Reshape((7, 7, 256)))
    model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding='same', use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding='same', use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding='same', use_bias=False, activation='tanh'))
    return model

def make_discriminator_model():
    model = tf.keras.Sequential()
    model.add(layers.Input(shape=[28, 28, 1]))
    model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding='same'))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding='same'))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Flatten())
    model.add(layers.Dense(1))
    return model

generator, discriminator = make_generator_model(), make_discriminator_model()
cross_entropy = tf.keras.losses.BinaryCrossentropy(from_logits=True)

def discriminator_loss(real_output, fake_output):
    return cross_entropy(tf.ones_like(real_output), real_output) + cross_entropy(tf.zeros_like(fake_output), fake_output)

def generator_loss(fake_output):
    return cross_entropy(tf.ones_like(fake_output), fake_output)

generator_optimizer = tf.keras.optimizers.Adam(1e-4)
discriminator_optimizer = tf.keras.optimizers.Adam(1e-4)

@tf.function
def train_step(images):
    noise = tf.random.normal([BATCH_SIZE, noise_dim])
    with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
        generated_images = generator(noise, training=True)
        real_output = discriminator(images, training=True)
        fake_output = discriminator(generated_images, training=True)
        gen_loss = generator_loss(fake_output)
        disc_loss = discriminator_loss(real_output, fake_output)
    gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
    gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
    generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
    discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))
    return gen_loss

dataset = tf.data.Dataset.from_tensor_slices(train_images).shuffle(60000).batch(BATCH_SIZE, drop_remainder=True).repeat()
it = iter(dataset)
for _ in range(warmup):
    train_step(next(it)).numpy()
rates = []
for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = train_step(next(it))
    loss.numpy()  # wait for the last step
    rates.append(steps / (time.perf_counter() - t0))
print(json.dumps({"tf": tf.__version__, "rates": rates, "threads": tf.config.threading.get_intra_op_parallelism_threads()}))
'''


def mnist_nhwc(path: str) -> None:
    """The embedded digits as the tutorial feeds them: (N, 28, 28, 1) float32 in [-1, 1]."""
    import numpy as np

    from ganforge.data import load_images

    data = load_images("mnist5k", resolution=28, channels=1)
    np.save(path, (data.images.permute(0, 2, 3, 1).numpy().astype("float32") - 127.5) / 127.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tf-python", required=True, help="a python3 with tensorflow installed")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    data = "/tmp/ganforge_mnist_nhwc.npy"
    mnist_nhwc(data)
    tf_rates, ref_rates, fast_rates, last = [], [], [], {}
    for _ in range(args.rounds):
        out = subprocess.run([args.tf_python, "-c", TF_TUTORIAL, str(args.steps), "3", "3", data],
                             capture_output=True, text=True, check=True)
        tf_info = json.loads(out.stdout.strip().splitlines()[-1])
        tf_rates.append(statistics.median(tf_info["rates"]))
        last = bench_train(get_preset("keras-dcgan-mnist"), batch=256, device=torch.device("cpu"), steps=args.steps,
                           repeats=3, warmup=3, overrides=tuple(args.overrides))
        ref_rates.append(last["reference"]["steps_per_s"])
        fast_rates.append(last["fast"]["steps_per_s"])
        print(f"round: tf {tf_rates[-1]:.3f}  torch eager {ref_rates[-1]:.3f}  ganforge {fast_rates[-1]:.3f} steps/s",
              file=sys.stderr)
    tf_s, ref_s, fast_s = (statistics.median(r) for r in (tf_rates, ref_rates, fast_rates))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(json.dumps({
        "batch": 256, "tf_keras_steps_per_s": round(tf_s, 3), "torch_eager_steps_per_s": round(ref_s, 3),
        "ganforge_steps_per_s": round(fast_s, 3), "ratio_vs_tf": round(fast_s / tf_s, 3),
        "ratio_vs_torch_eager": round(fast_s / ref_s, 3), "rounds": {"tf": tf_rates, "torch_eager": ref_rates,
                                                                     "ganforge": fast_rates},
        "tf": tf_info["tf"], "torch": torch.__version__, "threads": torch.get_num_threads(), "cores": os.cpu_count(),
        "perf": last["perf"], "precision": last["fast"]["precision"], "channels_last": last["channels_last"],
        "cpu": platform.processor() or platform.machine(), "commit": commit,
        "date": datetime.date.today().isoformat(),
    }, indent=2))


if __name__ == "__main__":
    main()
