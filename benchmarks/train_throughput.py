"""Training throughput: the seed article's data pipeline against course_lib's trainer, same models, same images.

    python benchmarks/train_throughput.py                 # 60,000 images (Fashion-MNIST from Debian if present)
    python benchmarks/train_throughput.py --epochs 3 --device cuda
    python benchmarks/train_throughput.py --wait-policies default,PASSIVE   # CPU: each OpenMP wait policy

(a) the article's pipeline: a torchvision MNIST-style dataset, RandomRotation(10) + ToTensor in a DataLoader
    (batch 1024, shuffle, workers = CPU count), AE then VAE trained over it each epoch, loss.item() every step;
(b) course_lib: images held as one tensor on the device, rotation done on the device in batches, foreach/fused
    AdamW, the same two models and the same number of images per epoch.
Prints seconds per epoch of both, the ratio, and matmul FLOPs per epoch against the machine's measured
matmul throughput.

On a CPU the OpenMP wait policy decides much of the result: by default PyTorch's threads spin while they
wait for work, which suits course_lib's single process but starves the article's DataLoader workers;
``OMP_WAIT_POLICY=PASSIVE`` (threads sleep) helps the article and slows course_lib. ``--wait-policies``
runs the whole benchmark once per policy, each in a fresh process (the policy is read at start-up), and
prints a summary of all of them, including the most conservative pairing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from torchvision import datasets, transforms

from course_lib.config import pick_device, seed_everything
from course_lib.data import DEBIAN_FASHION_MNIST, load_dataset, read_idx, write_idx
from course_lib.losses import BetaVAEObjective, default_objective
from course_lib.measure import synchronize
from course_lib.models import is_vae, preset
from course_lib.train import IMPROVED_BETA, RECIPES, fit


def torchvision_folder(root: Path, size: int) -> tuple[str, Path]:
    """A FashionMNIST raw folder that torchvision reads: Debian's files, or mnist-5k tiled to ``size`` images."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    if DEBIAN_FASHION_MNIST.exists():
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte"):
            write_idx(raw / stem, read_idx(DEBIAN_FASHION_MNIST / f"{stem}.gz")[:size])
        return f"Fashion-MNIST ({DEBIAN_FASHION_MNIST})", root
    small = load_dataset("mnist-5k")
    reps = -(-size // len(small.train_images))
    images = (small.train_images * 255).round().to(torch.uint8).squeeze(1).repeat(reps, 1, 1)[:size]
    labels = small.train_labels.repeat(reps)[:size]
    for split, n in (("train", size), ("t10k", 1000)):
        write_idx(raw / f"{split}-images-idx3-ubyte", images[:n])
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels[:n])
    return f"mnist-5k tiled to {size:,} images (install dataset-fashion-mnist for real 60k images)", root


def seed_vae_loss(recon, x, mu, logvar, beta=0.5):
    """The article's VAE loss: summed BCE + beta * summed KL over the batch."""
    bce = F.binary_cross_entropy(recon.view(-1, 784), x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + beta * kld


def seed_epoch(models, optimizers, loader, device) -> float:
    """One epoch of the article's loop: AE over the loader, then VAE over the loader."""
    started = time.perf_counter()
    for model, optimizer in zip(models, optimizers):
        model.train()
        for data, _ in loader:
            data = data.to(device)
            optimizer.zero_grad()
            if is_vae(model):
                recon, mu, logvar = model(data)
                loss = seed_vae_loss(recon, data, mu, logvar)
            else:
                loss = F.mse_loss(model(data), data)
            loss.backward()
            loss.item()
            optimizer.step()
    synchronize(device)
    return time.perf_counter() - started


def matmul_flops_per_epoch(models, n_images: int, batch: int, device) -> float:
    """FLOPs of forward + backward of both models over one epoch, counted by torch's flop counter."""
    total = 0.0
    x = torch.rand(batch, 1, 28, 28, device=device)
    for model in models:
        counter = FlopCounterMode(display=False)
        with counter:
            out = model(x)
            loss = seed_vae_loss(*out[:1], x, *out[1:]) if is_vae(model) else F.mse_loss(out, x)
            loss.backward()
        total += counter.get_total_flops() * n_images / batch
        model.zero_grad(set_to_none=True)
    return total


def measured_matmul_flops(device, n: int = 1024, repeats: int = 20) -> float:
    a, b = torch.rand(n, n, device=device), torch.rand(n, n, device=device)
    a @ b
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - started)


def run_once(args: argparse.Namespace) -> dict[str, float]:
    """Both pipelines in this process; prints and returns seconds per epoch, FLOPs and matmul throughput."""
    device = pick_device(args.device)
    batch = RECIPES["seed-improved"].batch_size
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, DataLoader workers {args.workers}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        source, root = torchvision_folder(Path(tmp), args.images)
        dataset = datasets.FashionMNIST(str(root), train=True, download=False,
                                        transform=transforms.Compose([transforms.RandomRotation(10),
                                                                      transforms.ToTensor()]))
        print(f"data: {source}, {len(dataset):,} training images per epoch, batch {batch}", flush=True)
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=args.workers)
        images = (dataset.data.float() / 255).unsqueeze(1)

        seed_everything(0)
        models = [preset("seed-improved-ae").to(device), preset("seed-improved-vae").to(device)]
        optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-5) for m in models]
        seed_epoch(models, optimizers, loader, device)  # warm-up: worker start, allocator, caches
        seed_epochs = [seed_epoch(models, optimizers, loader, device) for _ in range(args.epochs)]

        seed_everything(0)
        models = [preset("seed-improved-ae").to(device), preset("seed-improved-vae").to(device)]
        device_images = images.to(device)
        recipe = RECIPES["seed-improved"].replace(epochs=1 + args.epochs, plateau_scheduler=False)
        per_epoch = []
        for model in models:
            objective = BetaVAEObjective(IMPROVED_BETA) if is_vae(model) else default_objective(model)
            history = fit(model, device_images, recipe, objective=objective, progress=False)
            per_epoch.append(history["seconds"][1:])  # skip the warm-up epoch, as above
        course_epochs = [ae + vae for ae, vae in zip(*per_epoch)]

    flops = matmul_flops_per_epoch(models, len(images), batch, device)
    peak = measured_matmul_flops(device)
    seed_seconds, course_seconds = statistics.median(seed_epochs), statistics.median(course_epochs)
    print(f"\n{'pipeline':<34}{'s/epoch (median, range)':>26}{'GFLOP/s':>10}{'of matmul peak':>16}")
    for name, epochs in (("article (DataLoader + PIL rotation)", seed_epochs),
                         ("course_lib (tensors on device)", course_epochs)):
        seconds = statistics.median(epochs)
        spread = f"{seconds:.2f} ({min(epochs):.2f}-{max(epochs):.2f})"
        print(f"{name:<34}{spread:>26}{flops / seconds / 1e9:>10.1f}{flops / seconds / peak:>16.0%}")
    low, high = min(seed_epochs) / max(course_epochs), max(seed_epochs) / min(course_epochs)
    print(f"\nspeed-up course_lib / article: {seed_seconds / course_seconds:.1f}x (medians of {args.epochs} timed "
          f"epochs; from the slowest to the fastest epochs' ratios {low:.1f}-{high:.1f}x)")
    print(f"FLOPs per epoch (AE + VAE, forward + backward): {flops / 1e9:.1f} GFLOP; "
          f"measured matmul throughput: {peak / 1e9:.1f} GFLOP/s; matmul alone at that rate: "
          f"{flops / peak:.2f} s/epoch", flush=True)
    return {"article": seed_seconds, "course_lib": course_seconds, "flops": flops, "peak": peak,
            "article_range": [min(seed_epochs), max(seed_epochs)], "course_lib_range": [min(course_epochs),
                                                                                           max(course_epochs)]}


def compare_wait_policies(args: argparse.Namespace, policies: list[str]) -> None:
    """Run :func:`run_once` in a fresh process per OpenMP wait policy and summarise."""
    results: dict[str, dict[str, float]] = {}
    for policy in policies:
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, __file__, "--images", str(args.images), "--epochs", str(args.epochs),
                       "--workers", str(args.workers), "--result-file", out.name]
            if args.device:
                command += ["--device", args.device]
            print(f"\n=== OMP_WAIT_POLICY={policy} ===", flush=True)
            subprocess.run(command, env=env, check=True)
            results[policy] = json.loads(Path(out.name).read_text())
    print(f"\n{'OMP_WAIT_POLICY':<18}{'article s/epoch':>22}{'course_lib s/epoch':>22}{'speed-up':>10}"
          "   (medians of the timed epochs, with their range)")
    for policy, r in results.items():
        article = f"{r['article']:.2f} ({r['article_range'][0]:.2f}-{r['article_range'][1]:.2f})"
        course = f"{r['course_lib']:.2f} ({r['course_lib_range'][0]:.2f}-{r['course_lib_range'][1]:.2f})"
        print(f"{policy:<18}{article:>22}{course:>22}{r['article'] / r['course_lib']:>9.1f}x")
    best_article = min(results.items(), key=lambda kv: kv[1]["article"])
    best_course = min(results.items(), key=lambda kv: kv[1]["course_lib"])
    print(f"each pipeline under its own best policy (article {best_article[0]}, course_lib {best_course[0]}): "
          f"{best_article[1]['article'] / best_course[1]['course_lib']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs of each pipeline (after one warm-up)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--wait-policies", default=None,
                        help="comma-separated OpenMP wait policies to compare, e.g. default,PASSIVE")
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.wait_policies:
        compare_wait_policies(args, args.wait_policies.split(","))
        return
    result = run_once(args)
    if args.result_file:
        Path(args.result_file).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
