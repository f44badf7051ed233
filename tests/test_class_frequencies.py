"""Class-conditional generators are scored in the reference's class proportions: sampling's
class_counts / spread_classes (largest remainder, spread evenly, cycling reproduced for equal
weights), generate(class_weights=...), evaluate()'s class mix and its record in the protocol, and
the Python API naming its own parameters (not `ganforge sample`'s flags) in its errors."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from ganforge.cli import main
from ganforge.data import load_images
from ganforge.errors import UsageError
from ganforge.metrics.evaluation import evaluate
from ganforge.metrics.imagesets import ImageSet
from ganforge.sampling import class_counts, generate, sample_labels, save_samples, spread_classes
from test_compare import isolated  # noqa: F401  (autouse: a private reference cache, one torch thread)


@pytest.fixture(scope="module")
def mnist():
    data = load_images("mnist5k", resolution=28, channels=1)
    return data.images.cpu(), data.labels.cpu()  # uint8 (5000, 1, 28, 28), int64 (5000,) 500 per class


class ClassDigits(nn.Module):
    """A 'conditional generator' returning real digits of the asked class (one of 40 picked by z),
    so its images are as class-true as mnist-clf is accurate."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.z_dim, self.num_classes = 4, 10
        self.by_class = [images[labels == k][:40] for k in range(10)]  # uint8 (40, 1, 28, 28) each
        self.anchor = nn.Parameter(torch.zeros(()))  # generate() reads the device from a parameter

    def forward(self, z, y):
        picks = [self.by_class[int(k)][int(abs(v) * 1000) % 40] for k, v in zip(y, z[:, 0])]
        return torch.stack(picks).float() / 127.5 - 1  # (N, 1, 28, 28) in [-1, 1]


def labelled_subset(mnist, per_class: list[int], offset: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    """per_class[k] digits of class k (none of the generator's 40), interleaved -> uint8 (N, 1, 28, 28), int64 (N,)."""
    images, labels = mnist
    idx = torch.cat([torch.nonzero(labels == k).flatten()[offset:offset + c] for k, c in enumerate(per_class)])
    idx = idx[torch.argsort(torch.rand(len(idx), generator=torch.Generator().manual_seed(0)))]
    return images[idx], labels[idx]


IMBALANCED = [90, 10, 10, 10, 10, 10, 10, 10, 10, 10]  # half of them zeros


# ---------------------------------------------------------------------------------------------
# Counts and order


def test_class_counts_is_largest_remainder_with_ties_to_the_lower_class():
    assert class_counts(10, [1, 1, 1]).tolist() == [4, 3, 3]
    assert class_counts(2, [1, 1, 1]).tolist() == [1, 1, 0]  # exact ties: the lower index first
    assert class_counts(7, [0.5, 0.25, 0.25]).tolist() == [3, 2, 2]  # remainders .5 < .75 = .75
    assert class_counts(100, [3, 1, 0]).tolist() == [75, 25, 0]
    assert class_counts(10, [0.1] * 10).tolist() == [1] * 10  # 0.1 is not exact in binary: still exact ties
    w = np.array([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])  # MNIST test digits per class
    c = class_counts(1000, w)
    quota = 1000 * w / w.sum()
    assert c.sum() == 1000 and np.all(np.abs(c - quota) < 1)
    assert c.tolist() == [98, 114, 103, 101, 98, 89, 96, 103, 97, 101]


def test_spread_classes_gives_exact_counts_evenly_spread():
    assert spread_classes([5, 2, 1]).tolist() == [0, 1, 2, 0, 0, 1, 0, 0]
    assert spread_classes([0, 3, 0]).tolist() == [1, 1, 1]
    labels = spread_classes([60, 30, 10]).numpy()
    assert np.bincount(labels).tolist() == [60, 30, 10]
    running = np.cumsum(np.eye(3)[labels], axis=0)  # (100, 3) images per class among the first m
    m = np.arange(1, 101)[:, None]
    assert np.abs(running - m * np.array([0.6, 0.3, 0.1])).max() < 1  # every prefix within one image


def test_equal_weights_reproduce_todays_cycling_for_every_n():
    for k in range(1, 12):
        for n in range(1, 40):
            want = torch.arange(n) % k
            assert torch.equal(sample_labels(n, k), want)
            assert torch.equal(sample_labels(n, k, class_weights=[7] * k), want), (n, k)
            assert torch.equal(spread_classes(class_counts(n, np.ones(k))), want), (n, k)


def test_generate_with_class_weights(mnist):
    G = ClassDigits(*mnist)
    plain = generate(G, 23, seed=5)
    for w in ([1] * 10, np.full(10, 0.1), torch.full((10,), 3.0)):
        same = generate(G, 23, seed=5, class_weights=w)
        assert np.array_equal(same[0], plain[0]) and np.array_equal(same[1], plain[1])
    images, labels = generate(G, 20, seed=5, class_weights=IMBALANCED)
    assert np.bincount(labels, minlength=10).tolist() == [10, 2, 1, 1, 1, 1, 1, 1, 1, 1]  # quotas 10, 1.11 ...
    assert labels.tolist()[:10] == list(range(10))  # spread, not all the zeros first
    assert np.array_equal(images[labels == 0], generate(G, 20, seed=5, class_index=0)[0][labels == 0])


@pytest.mark.parametrize("kwargs, needle", [
    (dict(class_weights=[1] * 9), "class_weights has 9 entries but this generator has 10 classes"),
    (dict(class_weights=[1] * 9 + [-1]), "class_weights[9]=-1: a weight must be a finite number >= 0"),
    (dict(class_weights=[1] * 9 + [float("nan")]), "class_weights[9]=nan"),
    (dict(class_weights=[True] * 10), "class_weights[0]=True"),
    (dict(class_weights=[0] * 10), "class_weights are all 0"),
    (dict(class_weights="1" * 10), "class_weights is a str: give a list of 10 numbers"),
    (dict(class_weights=np.ones((2, 5))), "class_weights is an array of shape (2, 5)"),
    (dict(class_weights=[1] * 10, class_index=3), "class_weights and class_index=3 both given"),
])
def test_bad_class_weights_are_one_line_usage_errors(mnist, kwargs, needle):
    with pytest.raises(UsageError) as err:
        generate(ClassDigits(*mnist), 10, **kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_class_weights_for_an_unconditional_generator_are_refused():
    G = nn.Linear(4, 4)
    G.z_dim = 4
    with pytest.raises(UsageError, match="class_weights: this generator is unconditional"):
        generate(G, 4, class_weights=[1])


# ---------------------------------------------------------------------------------------------
# Evaluation


def test_evaluation_draws_the_reference_class_frequencies_and_records_them(tmp_path, mnist):
    G = ClassDigits(*mnist)
    images, labels = labelled_subset(mnist, IMBALANCED)
    np.savez(tmp_path / "ref.npz", images=images[:, 0].numpy(), labels=labels.numpy())
    args = dict(metrics="fid,classes,labels", evaluator="mnist-clf", n=100, seed=3)
    for ref in (str(tmp_path / "ref.npz"), ImageSet(images, {"kind": "test set"}, labels=labels)):
        r = evaluate(G, ref=ref, **args)
        t = r.protocol["target"]
        assert t["labels"] == "reference class frequencies" and "labels_note" not in t
        assert t["reference_class_counts"] == IMBALANCED
        assert t["class_counts"] == [50] + [6] * 5 + [5] * 4 == class_counts(100, IMBALANCED).tolist()
        assert r.values["label_agreement"] > 0.95  # the asked labels are the drawn ones
        assert abs(r.class_hist[0] - 50) <= 3  # mnist-clf reads half the images as zeros, as in the reference
    uniform = evaluate(G, ref=str(tmp_path / "ref.npz"), class_mix="uniform", **args)
    assert uniform.protocol["target"]["labels"] == "classes cycling 0..K-1"
    assert uniform.protocol["target"]["labels_note"] == "uniform classes asked (class_mix='uniform')"
    assert uniform.protocol["target"]["class_counts"] == [10] * 10
    # the point of it all: a uniform mix against a reference of half zeros scores far worse
    assert r.values["fid"] < 0.5 * uniform.values["fid"]
    assert r.values["class_kl"] < 0.2 * uniform.values["class_kl"]


def test_a_balanced_reference_gives_the_same_images_and_numbers_as_before(mnist):
    G = ClassDigits(*mnist)
    images, labels = labelled_subset(mnist, [30] * 10)
    args = dict(metrics="fid,kid,classes", evaluator="mnist-clf", n=95, seed=1)  # 95: not a multiple of 10
    labelled = evaluate(G, ref=ImageSet(images, {}, labels=labels), **args)
    before = evaluate(G, ref=images, **args)  # no labels: today's cycling
    assert labelled.protocol["target"]["labels"] == "reference class frequencies"
    assert before.protocol["target"]["labels_note"] == "the reference has no labels"
    assert labelled.protocol["target"]["pixels_sha256"] == before.protocol["target"]["pixels_sha256"]
    assert labelled.values == before.values
    assert labelled.protocol["target"]["class_counts"] == [10] * 5 + [9] * 5


def test_a_reference_of_other_classes_keeps_cycling_and_says_why(tmp_path, mnist):
    G = ClassDigits(*mnist)
    images, labels = labelled_subset(mnist, [20] * 5)  # classes 0..4 only
    # named as five classes (five class folders): not the generator's ten
    r = evaluate(G, ref=ImageSet(images, {}, labels=labels, class_names=list("01234")), metrics="fid",
                 evaluator="mnist-clf", n=50)
    assert r.protocol["target"]["labels"] == "classes cycling 0..K-1"
    assert r.protocol["target"]["labels_note"] == "the reference has 5 classes, the generator 10"
    # bare labels (an .npz): indices of the generator's classes, so the classes it lacks get no images,
    # whichever they are (missing 9 or missing 0 alike)
    for keep in (labels < 5, labels > 0):
        t = evaluate(G, ref=ImageSet(images[keep], {}, labels=labels[keep]), metrics="fid", evaluator="mnist-clf",
                     n=50).protocol["target"]
        assert t["labels"] == "reference class frequencies" and t["class_counts"][5:] == [0] * 5
        assert (t["class_counts"][0] == 0) == bool((~keep).any())
    t = evaluate(G, ref=ImageSet(images, {}, labels=labels + 6), metrics="fid", evaluator="mnist-clf",
                 n=50).protocol["target"]
    assert t["labels_note"] == "the reference's labels go up to 10, the generator's classes 0..9"
    # a saved generator whose run kept class names: the reference's must be the same, in order
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=8, g_width=8, num_classes=10)
    save_generator(tmp_path / "g", cfg, build_generator(cfg))
    meta = json.loads((tmp_path / "g" / "config.json").read_text())
    names = [str(i) for i in range(10)]
    (tmp_path / "g" / "config.json").write_text(json.dumps({**meta, "class_names": names}))
    images, labels = labelled_subset(mnist, IMBALANCED)
    for ref_names, want in ((names[::-1], "classes cycling 0..K-1"), (names, "reference class frequencies")):
        ref = ImageSet(images, {}, labels=labels, class_names=ref_names)
        t = evaluate(str(tmp_path / "g"), ref=ref, metrics="fid", evaluator="mnist-clf", n=50).protocol["target"]
        assert t["labels"] == want
        assert t.get("labels_note") == ("the reference's class names are not the generator's" if ref_names != names else None)


def test_auto_evaluator_and_compare_and_the_cli_use_the_reference_classes(tmp_path, capsys, mnist):
    from ganforge.metrics.comparison import compare
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=8, g_width=8, num_classes=10)
    for name in ("g0", "g1"):
        torch.manual_seed(len(name) + int(name[1]))
        save_generator(tmp_path / name, cfg, build_generator(cfg))
    images, labels = labelled_subset(mnist, IMBALANCED)
    ref = tmp_path / "ref.npz"
    np.savez(ref, images=images[:, 0].numpy(), labels=labels.numpy())
    want = class_counts(60, IMBALANCED).tolist()

    r = evaluate(str(tmp_path / "g0"), ref=str(ref), metrics="fid", n=60)  # evaluator "auto": reads the reference
    assert r.protocol["target"]["class_counts"] == want
    c = compare([str(tmp_path / "g0"), str(tmp_path / "g1")], ref=str(ref), metrics="fid", n=60)
    assert all(t["class_counts"] == want for t in c.protocol["targets"].values())

    assert main(["eval", str(tmp_path / "g0"), "--ref", str(ref), "--metrics", "fid", "--n", "60", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["protocol"]["target"]["class_counts"] == want
    assert main(["eval", str(tmp_path / "g0"), "--ref", str(ref), "--metrics", "fid", "--n", "60"]) == 0
    assert "; classes: reference class frequencies" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "g0"), "--ref", str(ref), "--metrics", "fid", "--n", "60",
                 "--class-mix", "uniform", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["protocol"]["target"]["class_counts"] == [6] * 10
    assert main(["eval", str(tmp_path / "g0"), "--class-mix", "balanced"]) == 2


def test_an_auto_evaluator_without_ref_draws_the_target_after_the_default_reference(monkeypatch, mnist):
    """evaluator "auto" with no ref reads the channels from the target: the generator draws one
    image for that, and its set only once the reference (and its labels) are loaded."""
    import ganforge.metrics.evaluation as ev

    real = ev.load_image_set

    def labelled(source, **kw):  # as if the built-in set came with its labels
        s = real(source, **kw)
        assert source == "mnist5k" and kw.get("n") is None
        return ImageSet(s.images, s.identity, labels=mnist[1].clone(), class_names=[str(i) for i in range(10)])

    monkeypatch.setattr(ev, "load_image_set", labelled)
    r = evaluate(ClassDigits(*mnist), metrics="fid", n=50)
    assert r.protocol["extractor"]["name"] == "mnist-clf"
    assert r.protocol["target"]["labels"] == "reference class frequencies"
    assert r.protocol["target"]["class_counts"] == [5] * 10  # mnist5k: 500 digits of each class


def test_bad_class_mix_and_reference_labels_are_usage_errors(mnist):
    G = ClassDigits(*mnist)
    with pytest.raises(UsageError, match="class_mix='balanced': use 'reference' .* or 'uniform'"):
        evaluate(G, class_mix="balanced", evaluator="mnist-clf", n=10)
    images, labels = labelled_subset(mnist, [5] * 10)
    with pytest.raises(UsageError, match=r"labels is torch.float32 \(50,\); give an integer tensor"):
        evaluate(G, ref=ImageSet(images, {}, labels=labels.float()), evaluator="mnist-clf", n=10, metrics="fid")
    with pytest.raises(UsageError, match=r"labels is torch.int64 \(50,\) holding -1; give an integer tensor"):
        evaluate(G, ref=ImageSet(images, {}, labels=labels - 1), evaluator="mnist-clf", n=10, metrics="fid")


# ---------------------------------------------------------------------------------------------
# The Python API names its parameters; `ganforge sample` keeps its flags


@pytest.mark.parametrize("kwargs, needle", [
    (dict(n=2.5), "n=2.5: the number of images must be an integer from 1 to 1,000,000"),
    (dict(n=True), "n=True"),
    (dict(truncation="0.5"), "truncation='0.5': the threshold must be a number"),
    (dict(class_index=11), "class_index=11 is out of range: this generator has classes 0..9"),
])
def test_generate_errors_name_the_python_parameters(mnist, kwargs, needle):
    with pytest.raises(UsageError) as err:
        generate(ClassDigits(*mnist), **{"n": 4, **kwargs})
    assert needle in str(err.value) and "--" not in str(err.value)


def test_save_samples_errors_name_out_and_overwrite(tmp_path):
    (tmp_path / "s.npz").write_bytes(b"")
    imgs = np.zeros((2, 8, 8, 1), np.uint8)
    with pytest.raises(UsageError) as err:
        save_samples(imgs, None, tmp_path / "s.npz")
    assert f"out='{tmp_path / 's.npz'}' already exists: choose another path or pass overwrite=True" == str(err.value)
    with pytest.raises(UsageError, match=r"^out='.*x\.jpg': use a \.npz file"):
        save_samples(imgs, None, tmp_path / "x.jpg")


def test_the_sample_cli_still_names_its_flags(tmp_path, capsys):
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=8, g_width=8, num_classes=10)
    save_generator(tmp_path / "g", cfg, build_generator(cfg))
    for args, needle in ((["--n", "3", "--class", "11"], "--class 11 is out of range"),
                         (["--n", "0"], "--n 0: the number of images"),
                         (["--n", "3", "--truncation", "0"], "--truncation 0.0: the threshold")):
        assert main(["sample", str(tmp_path / "g"), *args, "--out", str(tmp_path / "x.npz")]) == 2
        assert needle in capsys.readouterr().err
    (tmp_path / "x.npz").write_bytes(b"")
    assert main(["sample", str(tmp_path / "g"), "--n", "3", "--out", str(tmp_path / "x.npz")]) == 2
    assert "already exists: choose another path or pass --overwrite" in capsys.readouterr().err


def test_class_folders_a_runs_training_data_and_the_periodic_evaluation_bring_their_labels(tmp_path, mnist):
    # The references users actually have: class sub-folders (or a zip of them), a built-in labelled set,
    # and a conditional run's own training data, in `ganforge eval RUN` and in the periodic evaluation.
    from PIL import Image

    from ganforge.config import apply_overrides
    from ganforge.data import ImageData
    from ganforge.metrics.imagesets import load_image_set
    from ganforge.metrics.run_defaults import TrainingData
    from ganforge.presets import get_preset
    from ganforge.training.periodic_eval import PeriodicEval

    images, labels = labelled_subset(mnist, IMBALANCED)
    for i, (img, k) in enumerate(zip(images, labels)):
        (tmp_path / "ref" / str(int(k))).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy()).save(tmp_path / "ref" / str(int(k)) / f"{i}.png")
    s = load_image_set(tmp_path / "ref")
    assert s.class_names == [str(k) for k in range(10)] and np.bincount(s.labels.numpy()).tolist() == IMBALANCED
    assert s.identity["labels"] == "class sub-folders"
    assert load_image_set("mnist5k").labels is not None and load_image_set(tmp_path / "ref" / "0").labels is None

    G = ClassDigits(*mnist)
    t = evaluate(G, ref=str(tmp_path / "ref"), metrics="fid", evaluator="mnist-clf", n=100).protocol["target"]
    assert t["labels"] == "reference class frequencies" and t["reference_class_counts"] == IMBALANCED

    # a run's training data, as `ganforge eval RUN` loads it: labels drawn with the images (n of them)
    td = TrainingData(str(tmp_path / "ref"), resolution=28, channels=1)
    full, some = td.load(None, 0, "--ref"), td.load(60, 5, "--ref")
    assert np.bincount(full.labels.numpy()).tolist() == IMBALANCED and full.class_names == s.class_names
    pick = [int(np.flatnonzero((full.images == x).flatten(1).all(1)).min()) for x in some.images]
    assert some.labels.tolist() == full.labels[pick].tolist()  # each image keeps its own label

    # the periodic evaluation of a conditional run: its reference keeps the training labels
    cfg = apply_overrides(get_preset("cgan-mnist"), ["eval.every=1", "eval.n=50"])
    data = ImageData(images, labels, [str(k) for k in range(10)], "test")
    pe = PeriodicEval(cfg, data, torch.device("cpu")).attach(tmp_path / "run")  # best/ goes there
    assert isinstance(pe.ref, ImageSet) and pe.ref.labels.tolist() == labels[:50].tolist()
    rows = pe(1, G, G, None)
    assert rows[0]["event"] == "eval" and "fid" in rows[0]
    unconditional = PeriodicEval(apply_overrides(get_preset("dcgan-mnist"), ["eval.every=1"]), data, torch.device("cpu"))
    assert isinstance(unconditional.ref, torch.Tensor)  # an unconditional G has no classes to mix


def test_label_agreement_of_class_folders_matches_the_folders_to_the_evaluators_classes_by_name(tmp_path, mnist):
    from PIL import Image

    images, labels = labelled_subset(mnist, [6, 4, 4, 4, 4, 4, 4, 4, 4, 4])
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for name, folder_of in (("digits", str), ("words", lambda k: words[k]), ("gap", str)):
        for i, (img, k) in enumerate(zip(images, labels)):
            if name == "gap" and int(k) == 5:
                continue  # no folder 5: the classes after it would shift by one if matched by index
            d = tmp_path / name / folder_of(int(k))
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img[0].numpy()).save(d / f"{i}.png")
    args = dict(metrics="labels", evaluator="mnist-clf", ref="mnist5k", n_ref=200)
    for name in ("digits", "gap"):
        r = evaluate(str(tmp_path / name), **args)
        assert r.values["label_agreement"] > 0.95 and r.protocol["options"]["label_class_map"].startswith("by name")
    with pytest.raises(UsageError, match="class folder\\(s\\) eight, five, four, nine are not mnist-clf classes"):
        evaluate(str(tmp_path / "words"), **args)  # sorted, "eight" is folder 0: it used to score 0.06


def test_compare_refuses_generators_whose_classes_were_drawn_differently(tmp_path, mnist):
    from ganforge.metrics.comparison import compare
    from ganforge.models import build_generator
    from ganforge.models.config import ModelConfig
    from ganforge.training.checkpoint import save_generator

    cfg = ModelConfig(arch="dcgan", resolution=28, channels=1, z_dim=8, g_width=8, num_classes=10)
    G = build_generator(cfg)
    for name, names in (("named", list("abcdefghij")), ("bare", None)):  # the same weights; one run kept names
        save_generator(tmp_path / name, cfg, G)
        if names:
            meta = json.loads((tmp_path / name / "config.json").read_text())
            (tmp_path / name / "config.json").write_text(json.dumps({**meta, "class_names": names}))
    images, labels = labelled_subset(mnist, IMBALANCED)
    np.savez(tmp_path / "ref.npz", images=images[:, 0].numpy(), labels=labels.numpy())
    (tmp_path / "ref_named").mkdir()
    targets = [str(tmp_path / "bare"), str(tmp_path / "named")]
    from PIL import Image

    for i, (img, k) in enumerate(zip(images, labels)):  # class folders 0..9: not the names a..j of "named"
        (tmp_path / "ref_named" / str(int(k))).mkdir(exist_ok=True)
        Image.fromarray(img[0].numpy()).save(tmp_path / "ref_named" / str(int(k)) / f"{i}.png")
    with pytest.raises(UsageError, match="their classes were drawn differently .* give --class-mix uniform"):
        compare(targets, metrics="fid", ref=str(tmp_path / "ref_named"), evaluator="mnist-clf", n=50)
    c = compare(targets, metrics="fid", ref=str(tmp_path / "ref_named"), evaluator="mnist-clf", n=50,
                class_mix="uniform", seeds=[0, 1])
    assert c.values[targets[0]]["fid"] == c.values[targets[1]]["fid"]  # the same weights, the same mix
    # the identities are the first seed's, as the reference's pixels are
    assert all(c.protocol["targets"][t]["noise_seed"] == 0 for t in targets)
    ok = compare(targets, metrics="fid", ref=str(tmp_path / "ref.npz"), evaluator="mnist-clf", n=50)  # bare labels
    assert {ok.protocol["targets"][t]["labels"] for t in targets} == {"reference class frequencies"}


def test_the_periodic_evaluation_lets_the_generator_cycle_for_an_eval_ref_of_other_class_names(tmp_path, mnist):
    from PIL import Image

    from ganforge.config import apply_overrides
    from ganforge.data import ImageData
    from ganforge.presets import get_preset
    from ganforge.training.periodic_eval import PeriodicEval

    images, labels = labelled_subset(mnist, IMBALANCED)
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for i, (img, k) in enumerate(zip(images, labels)):
        (tmp_path / "ref" / words[int(k)]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy()).save(tmp_path / "ref" / words[int(k)] / f"{i}.png")
    data = ImageData(images, labels, [str(k) for k in range(10)], "test")
    cfg = apply_overrides(get_preset("cgan-mnist"), ["eval.every=1", "eval.n=50", f"eval.ref={tmp_path / 'ref'}"])
    assert isinstance(PeriodicEval(cfg, data, torch.device("cpu")).ref, torch.Tensor)  # no mis-mapped mix
    same = ImageData(images, labels, sorted(words), "test")  # the run's own classes are these words
    assert isinstance(PeriodicEval(cfg, same, torch.device("cpu")).ref, ImageSet)
