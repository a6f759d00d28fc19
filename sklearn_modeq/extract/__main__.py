"""Command line: embed the media of a manifest into the HDF5 cache.

Example::

    python -m sklearn_modeq.extract manifest.csv --out cache/ \\
        --backbone visual=resnet18:/models/resnet18-f37072fd.pth \\
        --backbone audio=resnet18-audio:/models/resnet18-f37072fd.pth \\
        --backbone text=minilm --device cuda --batch-size 64
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ._base import available_backbones, get_backbone
from ._run import extract


def _parse_backbones(specs: Sequence[str], options: Sequence[str]):
    opts: dict[str, dict[str, str]] = {}
    for item in options:
        key, sep, value = item.partition("=")
        modality, dot, name = key.partition(".")
        if not sep or not dot:
            raise SystemExit(
                f"--option {item!r}: expected MODALITY.NAME=VALUE, e.g. "
                "visual.image_size=112."
            )
        opts.setdefault(modality, {})[name] = value
    backbones = {}
    for spec in specs:
        modality, sep, rest = spec.partition("=")
        if not sep or not modality or not rest:
            raise SystemExit(
                f"--backbone {spec!r}: expected MODALITY=NAME[:CHECKPOINT], e.g. "
                "text=minilm or visual=resnet18:/models/resnet18.pth."
            )
        name, _, checkpoint = rest.partition(":")
        try:
            cls = get_backbone(name)
            backbones[modality] = cls(checkpoint or None, **opts.pop(modality, {}))
        except ValueError as exc:
            raise SystemExit(f"--backbone {spec!r}: {exc}") from None
    if opts:
        raise SystemExit(
            f"--option given for {sorted(opts)}, which have no --backbone."
        )
    return backbones


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_modeq.extract",
        description=(
            "Embed the media listed in a manifest (CSV or JSONL with columns id, "
            "split, label and one column per modality) with one frozen backbone per "
            "modality, into an HDF5 cache folder (one <split>.h5 per split). "
            "Interrupted runs resume where they stopped."
        ),
        epilog=f"backbones: {', '.join(available_backbones())}",
    )
    parser.add_argument("manifest", help="manifest .csv or .jsonl")
    parser.add_argument("--out", required=True, help="cache folder to write")
    parser.add_argument(
        "--backbone",
        action="append",
        required=True,
        metavar="MODALITY=NAME[:CHECKPOINT]",
        help="backbone for a manifest column; repeat per modality",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="MODALITY.KEY=VALUE",
        help="backbone option, e.g. visual.frames=8; repeatable",
    )
    parser.add_argument("--splits", help="comma-separated splits (default: all)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--num-workers", type=int, default=0, help="DataLoader workers decoding media"
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "float16"),
        default="float32",
        help="storage type of the features",
    )
    parser.add_argument(
        "--no-autocast",
        action="store_true",
        help="run float32 on CUDA instead of float16 autocast",
    )
    parser.add_argument(
        "--on-missing",
        choices=("error", "nan"),
        default="error",
        help="a missing or unreadable media file: fail, or NaN row",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard existing and partial cache files",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="on an error, show the full traceback instead of one line",
    )
    return parser


#: Errors whose message is the whole story; others also get their type name.
_EXPECTED = (ValueError, OSError, RuntimeError)


def _one_line(exc: BaseException) -> str:
    """The error as one line (the type name too for an unexpected kind)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, _EXPECTED):
        return text
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m sklearn_modeq.extract`` and ``modeq-extract``.

    Returns the exit status: 0, or 1 after an error printed as one line on
    stderr (``--debug`` raises it instead, with its traceback), or 130 when
    interrupted. Argument errors exit through ``SystemExit`` with one line.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        files = _run(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(
            f"{parser.prog}: interrupted; the batches already written are kept, "
            "run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"{parser.prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    for split, path in files.items():
        print(f"{split}: {path}")
    return 0


def _run(args: argparse.Namespace) -> dict:
    backbones = _parse_backbones(args.backbone, args.option)
    return extract(
        args.manifest,
        args.out,
        backbones,
        splits=args.splits.split(",") if args.splits else None,
        device=args.device,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        dtype=args.dtype,
        autocast=not args.no_autocast,
        restart=args.restart,
        on_missing=args.on_missing,
        progress=not args.no_progress,
    )


if __name__ == "__main__":
    sys.exit(main())
