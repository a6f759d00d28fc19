"""Time and memory per item of the Ola-7B media backbones, on a tiny random checkpoint.

No Ola-7b weights can be downloaded here, so this measures the pipeline around the
model, not the 7B model: a tiny random checkpoint in the real Ola-7b layout
(:func:`sklearn_modeq.extract._ola_tiny.write_tiny_ola`: a 32-wide, 2-layer Qwen2,
Oryx-ViT, Whisper and BEATs of the same architectures but tiny widths, Whisper chunks
of 1 s instead of 30 s). Each modality runs in a fresh subprocess that reports

- ``load_s``: building the backbone from the folder (imports excluded);
- ``preprocess_s`` / ``embed_s`` per item: decoding and Ola's resizing / mel and
  fbank features, then towers + projector + language model (batches of 4);
- ``media_tokens``: media embeddings per item handed to the language model (for
  images and video the same as with Ola-7b: same patch size and resizing);
- ``peak_mib``: peak resident memory above the baseline after imports (Linux
  ``VmHWM`` after resetting it through ``/proc/self/clear_refs``).

It also times the audio features of one 30 s chunk at Ola-7b's real sizes (Whisper's
128-bin log-mel, BEATs' fbank), which need no weights.

Media are made on the machine: a 256 px digit PNG, 16 frames of 256 px for video,
3 s WAV tones. Run: ``python -m benchmarks.bench_ola [--quick] [--device cpu|cuda]
[--threads N]``;
results go to ``benchmarks/results/bench_ola[_quick][_cuda].json``.
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

from ._media import write_tone
from ._timing import run_child

SEED = 0
RESULTS = Path(__file__).resolve().parent / "results"
MODALITIES = ("image", "video", "audio", "text")


def make_media(root: Path, n: int) -> dict[str, list]:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(SEED)
    out: dict[str, list] = {m: [] for m in MODALITIES}
    for i in range(n):
        img = Image.fromarray((digits.images[i] / 16 * 255).astype(np.uint8))
        img = img.resize((256, 256)).convert("RGB")
        img.save(root / f"{i}.png")
        out["image"].append(str(root / f"{i}.png"))
        clip = root / f"clip{i}"
        clip.mkdir()
        for f in range(16):
            img.rotate(f * 5).save(clip / f"{f:02d}.png")
        out["video"].append(str(clip))
        write_tone(root / f"{i}.wav", 200 + 40 * i, rng)
        out["audio"].append(str(root / f"{i}.wav"))
        out["text"].append(f"a handwritten digit {digits.target[i]} by person {i}")
    return out


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def child(modality: str, ckpt: str, media_json: str, device: str, threads: int) -> None:
    import transformers  # noqa: F401 - imported before the baselines

    from sklearn_modeq.extract import (
        get_backbone,
        ola,  # noqa: F401
    )

    if threads:
        torch.set_num_threads(threads)
    items = json.loads(Path(media_json).read_text())[modality]
    options = {"vision_heads": 2} if modality in ("image", "video") else {}
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = _status_kib("VmRSS")
    tic = time.perf_counter()
    bb = get_backbone(f"ola-7b-{modality}")(ckpt, **options).load(device)
    load_s = time.perf_counter() - tic
    warm = [bb.preprocess(bb.read(p, Path("/"))) for p in items[:2]]
    bb.embed(bb.collate(warm))
    prep = embed = 0.0
    tokens = []
    for start in range(0, len(items), 4):
        tic = time.perf_counter()
        batch = [bb.preprocess(bb.read(p, Path("/"))) for p in items[start : start + 4]]
        prep += time.perf_counter() - tic
        tic = time.perf_counter()
        bb.embed(bb.collate(batch))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        embed += time.perf_counter() - tic
        with torch.no_grad():
            tokens += [len(t) for t in bb.media_tokens(bb.collate(batch))]
    n = len(items)
    print(
        json.dumps(
            {
                "modality": modality,
                "load_s": load_s,
                "preprocess_s": prep / n,
                "embed_s": embed / n,
                "media_tokens": float(np.mean(tokens)),
                "peak_mib": (_status_kib("VmHWM") - base) / 1024,
            }
        )
    )


def real_audio_chunk_ms(repeats: int = 5) -> dict[str, float]:
    """Audio features of one 30 s chunk at Ola-7b's sizes (no weights needed):
    Whisper's 128-bin log-mel (transformers) and BEATs' Kaldi fbank, ms each."""
    import transformers

    from sklearn_modeq.extract._beats import beats_fbank

    rng = np.random.default_rng(SEED)
    chunk = np.zeros(480000, dtype=np.float32)
    chunk[:48000] = 0.1 * rng.normal(size=48000)
    features = transformers.WhisperFeatureExtractor(feature_size=128)
    out = {}
    for name, fn in (
        ("whisper_mel_ms", lambda: features(chunk, sampling_rate=16000)),
        ("beats_fbank_ms", lambda: beats_fbank(chunk)),
    ):
        fn()
        tic = time.perf_counter()
        for _ in range(repeats):
            fn()
        out[name] = 1e3 * (time.perf_counter() - tic) / repeats
    return out


def measure(modality, ckpt, media_json, device, threads):
    return run_child(
        "benchmarks.bench_ola",
        modality,
        ckpt,
        media_json,
        "--device",
        device,
        "--threads",
        str(threads),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: default)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, args.device, args.threads)
        return None
    from sklearn_modeq.cache._format import library_versions
    from sklearn_modeq.extract._ola_tiny import write_tiny_ola

    n = 8 if args.quick else 16
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "media").mkdir()
        media = root / "media.json"
        media.write_text(json.dumps(make_media(root / "media", n)))
        ckpt = str(write_tiny_ola(root / "Ola-7b", seed=SEED))
        rows = [
            measure(m, ckpt, str(media), args.device, args.threads) for m in MODALITIES
        ]
    if args.threads:
        torch.set_num_threads(args.threads)
    audio_30s = real_audio_chunk_ms()
    threads = args.threads or torch.get_num_threads()
    print(f"{n} items per modality on {args.device}, {threads} threads")
    print("modality  load s  preprocess ms/item  embed ms/item  tokens  peak MiB")
    for r in rows:
        print(
            f"{r['modality']:<8} {r['load_s']:7.2f} {1e3 * r['preprocess_s']:19.1f} "
            f"{1e3 * r['embed_s']:14.1f} {r['media_tokens']:7.0f} {r['peak_mib']:9.0f}"
        )
    print(
        "one 30 s audio chunk at Ola-7b's sizes: Whisper log-mel "
        f"{audio_30s['whisper_mel_ms']:.1f} ms, BEATs fbank "
        f"{audio_30s['beats_fbank_ms']:.1f} ms"
    )
    result = {
        "benchmark": "bench_ola",
        "quick": args.quick,
        "seed": SEED,
        "items": n,
        "device": args.device,
        "device_name": torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else platform.processor() or platform.machine(),
        "threads": threads,
        "load_average": list(__import__("os").getloadavg()),
        "versions": library_versions(),
        "rows": rows,
        "audio_30s_chunk": audio_30s,
    }
    RESULTS.mkdir(exist_ok=True)
    suffix = ("_quick" if args.quick else "") + (
        "_cuda" if "cuda" in args.device else ""
    )
    out = RESULTS / f"bench_ola{suffix}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")
    return result


if __name__ == "__main__":
    main()
