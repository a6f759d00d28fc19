"""Ola-7B image, video and speech embeddings through the frozen MLLM (paper 5.4).

Each backbone runs Ola's own path for its modality, frozen, and pools the language
model's hidden states (``pooling`` = ``mean`` over the sequence or ``last`` token,
``layer``; the options of the text path ``ola-7b``):

- ``ola-7b-image``: an image -> a low-resolution view (area 384**2) and a native one
  (padded to a multiple of 32, shrunk above 1536**2) -> Oryx-ViT -> Ola's vision
  projector -> Qwen2;
- ``ola-7b-video``: a folder of frames -> ``frames`` frames spread over the clip ->
  Oryx-ViT at video resolution -> the projector's video layout -> Qwen2;
- ``ola-7b-audio``: a WAV file -> 16 kHz, 30 s chunks (at most ``max_chunks``) ->
  Whisper-large-v3's encoder (transformers' ``WhisperEncoder``) next to BEATs, their
  frames concatenated -> Ola's speech projector -> Qwen2;
- ``ola-7b-text``: a caption as the user turn of the same prompt (the text path
  ``ola-7b`` instead embeds raw text through any transformers model).

The media tokens sit where Ola's chat prompt has ``<image>`` / ``<speech>``::

    <|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
    MEDIA\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n

(``chat_template=false``: the media tokens and ``prompt`` alone). Everything is read
from the Ola-7b folder with ``local_files_only``; nothing is downloaded:

- ``config.json`` (``model_type`` ``ola_qwen``: the Qwen2 sizes, ``mm_projector_type``
  ``ola_mlp``, ``speech_encoder`` / ``music_encoder`` / ``mm_vision_tower`` paths,
  ``speech_encoder_type``, ``speech_encoder_ds_rate``, ``speech_encoder_hidden_size``);
- ``model*.safetensors`` (with ``model.safetensors.index.json`` when sharded): the
  language model (``model.embed_tokens``, ``model.layers.*``, ``model.norm``; ``lm_head``
  unused), ``model.mm_projector.*``, ``model.speech_projector.*`` (or a
  ``speech_projector.bin``) and Oryx-ViT under ``model.vision_tower.vision_tower.*``
  (or, if absent there, the ``oryx_vit.pth`` that ``mm_vision_tower`` names);
- the tokenizer files;
- ``large-v3.pt`` (OpenAI Whisper) and ``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``,
  the files ``speech_encoder`` and ``music_encoder`` name: found at that path, relative
  to the folder, or by file name inside the folder (options ``whisper``, ``beats`` and
  ``vision_tower`` override).

The tensor-name mappings are in :mod:`._ola_modules` and :mod:`._beats`. Backbones of
one checkpoint and dtype share a single copy of the language model.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import json
import math
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._base import (
    Backbone,
    MediaError,
    checkpoint_sha256,
    load_strict,
    load_torch_state,
    register_backbone,
    require,
)
from ._beats import beats_fbank, load_beats
from ._media import frame_paths, open_image, read_text, read_wav, resample
from ._ola_modules import (
    OlaSpeechProjector,
    OlaVisionProjector,
    build_oryx_vit,
    whisper_encoder,
)
from .hf import check_pooling, pool_hidden

SYSTEM_PROMPT = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
USER_TURN = "<|im_start|>user\n"
ASSISTANT_TURN = "<|im_end|>\n<|im_start|>assistant\n"  # closes the user turn
SAMPLE_RATE = 16000
HOP_LENGTH = 160
PIXEL_FILL = 127  # grey of Ola's padding, before normalisation

# Keys of an Ola checkpoint that are not the language model's.
_NOT_LM = [
    r"^(model\.)?(mm_projector|vision_tower|vision_resampler|speech_projector|"
    r"speech_encoder)\.",
    r"^lm_head\.",
]
_LM_CACHE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


# ------------------------------------------------------------------ checkpoint
class OlaCheckpoint:
    """The files of an Ola checkpoint folder (``config.json``, safetensors, ...).

    Parameters
    ----------
    folder : str or path
    name : str
        Backbone name, for error messages.
    """

    def __init__(self, folder: str | Path, name: str):
        self.name = name
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise FileNotFoundError(
                f"{name}: checkpoint folder {self.folder} does not exist; give the "
                "Ola-7b folder (config.json, model*.safetensors, tokenizer files)."
            )
        config = self.folder / "config.json"
        if not config.is_file():
            raise FileNotFoundError(f"{name}: {self.folder} has no config.json.")
        self.config: dict[str, Any] = json.loads(config.read_text())
        index = self.folder / "model.safetensors.index.json"
        single = self.folder / "model.safetensors"
        if index.is_file():
            self.weight_map = dict(json.loads(index.read_text())["weight_map"])
        elif single.is_file():
            st = require("safetensors")
            with st.safe_open(str(single), framework="pt") as fh:
                self.weight_map = dict.fromkeys(fh.keys(), single.name)
        else:
            raise FileNotFoundError(
                f"{name}: {self.folder} has neither model.safetensors nor "
                "model.safetensors.index.json."
            )

    def has(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.weight_map)

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The checkpoint tensors whose names start with ``prefix``, prefix removed."""
        st = require("safetensors")
        by_file: dict[str, list[str]] = defaultdict(list)
        for key, file in self.weight_map.items():
            if key.startswith(prefix):
                by_file[file].append(key)
        out = {}
        for file, keys in by_file.items():
            with st.safe_open(str(self.folder / file), framework="pt") as fh:
                for key in keys:
                    out[key[len(prefix) :]] = fh.get_tensor(key)
        return out

    def lm_config(self):
        """config.json as a ``Qwen2Config`` (Ola's own keys ride along; its
        ``rope_scaling`` is dropped, as Ola's model class does)."""
        transformers = require("transformers")
        drop = ("model_type", "architectures", "rope_scaling", "auto_map")
        return transformers.Qwen2Config(
            **{k: v for k, v in self.config.items() if k not in drop}
        )

    def locate(self, override: str, key: str, what: str, option: str) -> Path:
        """A file named by an option or by ``config.json[key]``: at that path, relative
        to the folder, or by its file name inside the folder."""
        value = override or self.config.get(key) or ""
        if not value:
            raise ValueError(
                f"{self.name}: config.json of {self.folder} names no {what} (key "
                f"{key!r}); give its path with the backbone option {option}=PATH."
            )
        if value.startswith("oryx_vit:"):
            value = value.split(":", 1)[1]
        path = Path(value).expanduser()
        candidates = [path if path.is_absolute() else self.folder / path]
        candidates.append(self.folder / path.name)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        where = " or ".join(str(c) for c in dict.fromkeys(candidates))
        source = f"option {option}" if override else f"config.json key {key!r}"
        raise FileNotFoundError(
            f"{self.name}: the {what} {value!r} ({source}) is not at {where}; copy it "
            f"into {self.folder} or give its path with the backbone option "
            f"{option}=PATH."
        )


@functools.cache
def _lm_class():
    transformers = require("transformers")
    return type(
        "OlaLanguageModel",
        (transformers.Qwen2Model,),
        {"_keys_to_ignore_on_load_unexpected": _NOT_LM},
    )


def language_model(ckpt: OlaCheckpoint, dtype: torch.dtype, device: str) -> nn.Module:
    """Ola's Qwen2 language model, shared by the backbones of one folder, dtype and
    target device (built on CPU; :meth:`Backbone.load` moves it)."""
    key = (str(ckpt.folder.resolve()), str(dtype), device)
    lm = _LM_CACHE.get(key)
    if lm is not None:
        return lm
    lm, info = _lm_class().from_pretrained(
        ckpt.folder,
        config=ckpt.lm_config(),
        local_files_only=True,
        dtype=dtype,
        output_loading_info=True,
    )
    if info["missing_keys"] or info["mismatched_keys"]:
        raise ValueError(
            f"{ckpt.name}: the language model in {ckpt.folder} does not match its "
            f"config.json: missing {sorted(info['missing_keys'])[:3]}, mismatched "
            f"{sorted(info['mismatched_keys'])[:3]}."
        )
    _LM_CACHE[key] = lm
    return lm


def _meta_load(module_factory, state, name, path) -> nn.Module:
    with torch.device("meta"):
        module = module_factory()
    load_strict(module, state, name, path, assign=True)
    return module


# --------------------------------------------------------------- media input
def _to_pixels(img) -> torch.Tensor:
    """PIL RGB -> (3, H, W) in [-1, 1] (Ola's processor: mean = std = 0.5)."""
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy((arr - 0.5) / 0.5).permute(2, 0, 1).contiguous()


def _rescaled(img, area: int, stride: int):
    """Resize to about ``area`` pixels, sides floored to multiples of ``stride``."""
    w, h = img.size
    scale = math.sqrt(area / (w * h))
    size = (
        max(stride, int(w * scale / stride) * stride),
        max(stride, int(h * scale / stride) * stride),
    )
    return img.resize(size, require("PIL.Image").BICUBIC)


def _padded(img, stride: int):
    """Centre on a grey canvas whose sides are the next multiples of ``stride``."""
    Image = require("PIL.Image")
    w, h = img.size
    size = (-(-w // stride) * stride, -(-h // stride) * stride)
    if size == (w, h):
        return img
    canvas = Image.new("RGB", size, (PIXEL_FILL,) * 3)
    canvas.paste(img, ((size[0] - w) // 2, (size[1] - h) // 2))
    return canvas


def ola_image_views(img, lowres: int = 384, maxres: int = 1536, stride: int = 32):
    """Ola's two views of an image: (low-res (3, h, w), native (3, H, W)) pixels."""
    w, h = img.size
    low = _rescaled(img, lowres * lowres, stride)
    high = (
        _rescaled(img, maxres * maxres, stride)
        if w * h > maxres * maxres
        else _padded(img, stride)
    )
    return _to_pixels(low), _to_pixels(high)


def ola_video_frame(img, maxres: int = 480, minres: int = 288, stride: int = 64):
    """A video frame at Ola's video resolution: (3, H, W) pixels."""
    w, h = img.size
    if w * h > maxres * maxres:
        img = _rescaled(img, maxres * maxres, stride)
    elif w * h < minres * minres:
        img = _rescaled(img, minres * minres, stride)
    else:
        img = _padded(img, stride)
    return _to_pixels(img)


def linspace_frames(frames: list, n: int) -> list:
    """``n`` frames at ``linspace(0, len - 1, n)`` (Ola's sampling); all if fewer."""
    if n <= 0 or len(frames) <= n:
        return frames
    return [frames[i] for i in np.linspace(0, len(frames) - 1, n).astype(int)]


# ------------------------------------------------------------------ backbones
class _OlaModel(nn.Module):
    """The language model and one modality's tower(s) and projector."""

    def __init__(self, lm: nn.Module, **parts: nn.Module | None):
        super().__init__()
        self.lm = lm
        for key, part in parts.items():
            setattr(self, key, part)


class _OlaBackbone(Backbone):
    """Shared part of the Ola-7B media backbones (see the module docstring).

    Subclasses implement :meth:`build_parts`, :meth:`preprocess` and
    :meth:`media_tokens`.
    """

    common_options: dict[str, Any] = {
        "pooling": "mean",
        "layer": -1,
        "dtype": "float32",
        "prompt": "",
        "chat_template": True,
    }

    @property
    def pooling(self) -> str:
        return (
            f"{self.opts['pooling']} of Ola's language-model hidden states, layer "
            f"{self.opts['layer']}"
        )

    def load(self, device: str | torch.device = "cpu") -> _OlaBackbone:
        self._target = str(torch.device(device))
        return super().load(device)

    def _ckpt(self) -> OlaCheckpoint:
        if not self.checkpoint:
            raise ValueError(
                f"backbone {self.name!r} needs the Ola-7b folder, e.g. "
                f"--backbone MODALITY={self.name}:/models/Ola-7b."
            )
        return OlaCheckpoint(self.checkpoint, self.name)

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.opts["dtype"])

    def build(self) -> nn.Module:
        check_pooling(self.name, self.opts["pooling"])
        ckpt = self._ckpt()
        transformers = require("transformers")
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(
            ckpt.folder, config=ckpt.lm_config(), local_files_only=True
        )
        self._before, self._after = (
            self._tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
            for text in self.template()
        )
        self._max_length = ckpt.config.get("tokenizer_model_max_length")
        lm = language_model(ckpt, self.dtype, getattr(self, "_target", "cpu"))
        parts = self.build_parts(ckpt, int(lm.config.hidden_size))
        self.dim_ = int(lm.config.hidden_size)
        return _OlaModel(lm, **parts)

    def template(self) -> tuple[str, str]:
        """Prompt text before and after the media tokens: Ola's ``<image>\\n`` /
        ``<speech>\\n`` user turn followed by ``prompt``."""
        after = "\n" + self.opts["prompt"]
        if not self.opts["chat_template"]:
            return "", after.strip("\n")
        return SYSTEM_PROMPT + USER_TURN, after + ASSISTANT_TURN

    @abc.abstractmethod
    def build_parts(self, ckpt: OlaCheckpoint, dim: int) -> dict[str, nn.Module]:
        """The modality's tower(s) and projector, on CPU in the working dtype."""

    @abc.abstractmethod
    def media_tokens(self, batch: list) -> list[torch.Tensor]:
        """Preprocessed items -> one (n_tokens, dim) tensor of media embeddings each."""

    def collate(self, items):
        return list(items)

    def forward(self, batch) -> torch.Tensor:
        lm = self.model_.lm
        embed = lm.get_input_embeddings()
        ids = [
            torch.tensor(t, dtype=torch.long, device=self.device)
            for t in (self._before, self._after)
        ]
        before, after = (embed(t) for t in ids)
        seqs = [
            torch.cat([before, m.to(before.dtype), after])
            for m in self.media_tokens(batch)
        ]
        if self._max_length:
            seqs = [s[: self._max_length] for s in seqs]
        length = max(len(s) for s in seqs)
        mask = torch.zeros(len(seqs), length, dtype=torch.long, device=self.device)
        for i, s in enumerate(seqs):
            mask[i, : len(s)] = 1
        x = torch.stack([F.pad(s, (0, 0, 0, length - len(s))) for s in seqs])
        layer = self.opts["layer"]
        out = lm(inputs_embeds=x, attention_mask=mask, output_hidden_states=layer != -1)
        hidden = out.last_hidden_state if layer == -1 else out.hidden_states[layer]
        return pool_hidden(hidden, mask, self.opts["pooling"])

    def external_files(self) -> list[Path]:
        """Weight files this backbone reads from outside the checkpoint folder."""
        return []

    def _checkpoint_hash(self) -> str:
        """The folder's fingerprint, combined with those of the weight files it names
        from elsewhere."""
        cached = getattr(self, "_sha256", None)
        if cached is None or cached[0] != self.checkpoint:
            folder = self._ckpt().folder.resolve()
            digest = checkpoint_sha256(folder)
            outside = [
                p for p in self.external_files() if folder not in p.resolve().parents
            ]
            if outside:
                parts = [digest] + [checkpoint_sha256(p) for p in outside]
                digest = hashlib.sha256("+".join(parts).encode()).hexdigest()
            self._sha256 = (self.checkpoint, digest)
        return self._sha256[1]

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_tokenizer", None)
        return state


class _OlaVision(_OlaBackbone):
    """Oryx-ViT and Ola's vision projector (image and video backbones)."""

    stride: ClassVar[int] = 32  # image sides are multiples of it (2 x 2 patches)

    def _vision_tower_file(self, ckpt: OlaCheckpoint) -> Path | None:
        prefix = "model.vision_tower.vision_tower."
        if not self.opts["vision_tower"] and ckpt.has(prefix):
            return None
        key = "mm_vision_tower" if "mm_vision_tower" in ckpt.config else "vision_tower"
        return ckpt.locate(
            self.opts["vision_tower"], key, "Oryx-ViT weights", "vision_tower"
        )

    def external_files(self) -> list[Path]:
        path = self._vision_tower_file(self._ckpt())
        return [path] if path else []

    def build_parts(self, ckpt: OlaCheckpoint, dim: int) -> dict[str, nn.Module]:
        kind = ckpt.config.get("mm_projector_type", "ola_mlp")
        if kind != "ola_mlp":
            raise ValueError(
                f"{self.name}: mm_projector_type {kind!r} in {ckpt.folder} is not "
                "supported (Ola-7b uses 'ola_mlp')."
            )
        path = self._vision_tower_file(ckpt)
        if path is None:
            source = ckpt.folder
            state = ckpt.tensors("model.vision_tower.vision_tower.")
        else:
            source, state = path, load_torch_state(path, self.name)
        tower = build_oryx_vit(state, self.opts["vision_heads"], self.name, source)
        proj_state = ckpt.tensors("model.mm_projector.")
        if "proj1.weight" not in proj_state:
            raise ValueError(
                f"{self.name}: {ckpt.folder} holds no vision projector weights "
                "(model.mm_projector.*)."
            )
        in_dim = proj_state["proj1.weight"].shape[1]
        width = tower.pos_embed.shape[-1]
        if in_dim != width:
            raise ValueError(
                f"{self.name}: the vision projector takes {in_dim}-d features but "
                f"Oryx-ViT is {width}-d."
            )
        projector = _meta_load(
            lambda: OlaVisionProjector(in_dim, dim),
            proj_state,
            self.name,
            ckpt.folder,
        )
        stride = self.stride
        if stride % (2 * tower.patch):
            raise ValueError(
                f"{self.name}: Oryx-ViT patch {tower.patch} does not divide the "
                f"{stride}-pixel stride into an even grid."
            )
        return {
            "tower": tower.to(self.dtype),
            "projector": projector.to(self.dtype),
        }


@register_backbone
class OlaImage(_OlaVision):
    """Ola-7B image embeddings (module docstring). Options: ``pooling``, ``layer``,
    ``dtype``, ``prompt``, ``chat_template``; ``vision_heads`` (16, Oryx-ViT's),
    ``lowres`` (384), ``maxres`` (1536), ``vision_tower`` (a path overriding the
    tower weights)."""

    name = "ola-7b-image"
    media = "image file"
    stride = 32
    options = {
        **_OlaBackbone.common_options,
        "vision_heads": 16,
        "lowres": 384,
        "maxres": 1536,
        "vision_tower": "",
    }

    def preprocess(self, source: Path):
        return ola_image_views(
            open_image(source), self.opts["lowres"], self.opts["maxres"], self.stride
        )

    def media_tokens(self, batch):
        model = self.model_
        out = []
        for low, high in batch:
            grids = [model.tower(x[None].to(self.device)) for x in (low, high)]
            out.append(model.projector.image(*grids))
        return out


@register_backbone
class OlaVideo(_OlaVision):
    """Ola-7B video embeddings from sampled frames (module docstring). Options as
    ``ola-7b-image`` except ``lowres``; ``frames`` (16), ``maxres`` (480) and
    ``minres`` (288) set the frame resolution."""

    name = "ola-7b-video"
    media = "video as a folder of frames or a .txt list of frame paths"
    stride = 64
    options = {
        **_OlaBackbone.common_options,
        "vision_heads": 16,
        "frames": 16,
        "maxres": 480,
        "minres": 288,
        "vision_tower": "",
    }

    def preprocess(self, source: Path) -> torch.Tensor:
        frames = linspace_frames(frame_paths(source), self.opts["frames"])
        pixels = [
            ola_video_frame(
                open_image(f), self.opts["maxres"], self.opts["minres"], self.stride
            )
            for f in frames
        ]
        sizes = {tuple(p.shape) for p in pixels}
        if len(sizes) > 1:
            raise MediaError(
                f"video {source}: its frames differ in size ({sorted(sizes)[:2]})."
            )
        return torch.stack(pixels)

    def media_tokens(self, batch):
        model = self.model_
        return [model.projector.video(model.tower(x.to(self.device))) for x in batch]


@register_backbone
class OlaAudio(_OlaBackbone):
    """Ola-7B speech/audio embeddings (module docstring). Options: ``pooling``,
    ``layer``, ``dtype``, ``prompt``, ``chat_template``; ``max_chunks`` (25 chunks of
    30 s, as Ola), ``whisper`` and ``beats`` (paths overriding config.json's)."""

    name = "ola-7b-audio"
    media = "WAV file"
    options = {
        **_OlaBackbone.common_options,
        "max_chunks": 25,
        "whisper": "",
        "beats": "",
    }

    def _files(self, ckpt: OlaCheckpoint) -> tuple[Path, Path | None]:
        kind = str(ckpt.config.get("speech_encoder_type", "dual")).lower()
        if "dual" not in kind and "whisper" not in kind:
            raise ValueError(
                f"{self.name}: speech_encoder_type {kind!r} in {ckpt.folder} is not "
                "supported ('dual' = Whisper + BEATs, as Ola-7b, or 'whisper')."
            )
        whisper = ckpt.locate(
            self.opts["whisper"], "speech_encoder", "Whisper encoder", "whisper"
        )
        beats = None
        if "dual" in kind:
            beats = ckpt.locate(
                self.opts["beats"], "music_encoder", "BEATs encoder", "beats"
            )
        return whisper, beats

    def external_files(self) -> list[Path]:
        return [p for p in self._files(self._ckpt()) if p is not None]

    def build_parts(self, ckpt: OlaCheckpoint, dim: int) -> dict[str, nn.Module]:
        transformers = require("transformers")
        whisper_path, beats_path = self._files(ckpt)
        ckpt_w = torch.load(whisper_path, map_location="cpu", weights_only=True)
        whisper = whisper_encoder(ckpt_w, self.name, whisper_path)
        beats = load_beats(beats_path, self.name) if beats_path else None
        dims = ckpt_w["dims"]
        self._chunk = 2 * HOP_LENGTH * int(dims["n_audio_ctx"])
        self._features = transformers.WhisperFeatureExtractor(
            feature_size=int(dims["n_mels"]), sampling_rate=SAMPLE_RATE
        )
        state = ckpt.tensors("model.speech_projector.")
        source: Any = ckpt.folder
        if not state and (ckpt.folder / "speech_projector.bin").is_file():
            source = ckpt.folder / "speech_projector.bin"
            raw = load_torch_state(source, self.name)
            state = {
                k.split("speech_projector.", 1)[1]: v
                for k, v in raw.items()
                if "speech_projector." in k
            }
        if "linear1.weight" not in state:
            raise ValueError(
                f"{self.name}: {ckpt.folder} holds no speech projector weights "
                "(model.speech_projector.* or speech_projector.bin)."
            )
        width = int(dims["n_audio_state"]) + (beats.width if beats else 0)
        k = int(ckpt.config.get("speech_encoder_ds_rate", 5))
        hidden, in_k = state["linear1.weight"].shape
        if in_k != width * k:
            raise ValueError(
                f"{self.name}: the speech projector takes {in_k} = k x width inputs, "
                f"but Whisper{' + BEATs' if beats else ''} give {width}-d frames and "
                f"config.json has speech_encoder_ds_rate={k}."
            )
        projector = _meta_load(
            lambda: OlaSpeechProjector(width, k, hidden, dim), state, self.name, source
        )
        return {
            "whisper": whisper.to(self.dtype),
            "beats": beats.float() if beats else None,
            "projector": projector.to(self.dtype),
        }

    def preprocess(self, source: Path):
        if getattr(self, "_chunk", None) is None:
            raise RuntimeError(f"backbone {self.name!r}: call load() first.")
        wav, rate = read_wav(source)
        wav = resample(wav, rate, SAMPLE_RATE)
        n = self._chunk
        starts = range(0, max(len(wav), 1), n)[: self.opts["max_chunks"]]
        chunks = [
            np.pad(wav[s : s + n], (0, max(0, n - len(wav[s : s + n])))) for s in starts
        ]
        mels = self._features(
            chunks,
            sampling_rate=SAMPLE_RATE,
            padding="max_length",
            max_length=n,
            return_tensors="pt",
        )["input_features"]
        fbank = torch.stack([beats_fbank(c) for c in chunks])
        return mels.float(), fbank

    def media_tokens(self, batch):
        model = self.model_
        counts = [len(mels) for mels, _ in batch]
        mels = torch.cat([m for m, _ in batch]).to(self.device)
        frames = model.whisper(mels.to(next(model.whisper.parameters()).dtype))
        frames = frames.last_hidden_state
        if model.beats is not None:
            fbank = torch.cat([f for _, f in batch]).to(self.device)
            with torch.autocast(self.device.type, enabled=False):
                audio = model.beats(fbank.float())
            gap = frames.shape[1] - audio.shape[1]
            if gap > 0:
                audio = F.pad(audio, (0, 0, 0, gap))
            elif gap < 0:
                frames = F.pad(frames, (0, 0, 0, -gap))
            frames = torch.cat([frames, audio.to(frames.dtype)], dim=-1)
        dtype = model.projector.linear1.weight.dtype
        return [model.projector(x.to(dtype)) for x in frames.split(counts)]


@register_backbone
class OlaText(_OlaBackbone):
    """Ola-7B text embeddings in Ola's chat prompt (the text is the user turn, then
    ``prompt`` on a new line if given); shares the language model with the media
    backbones of the same checkpoint. Options: ``pooling``, ``layer``, ``dtype``,
    ``prompt``, ``chat_template``, ``max_length`` (512 text tokens)."""

    name = "ola-7b-text"
    media = "text (a caption, or the path of a .txt file)"
    reads_text = True
    options = {**_OlaBackbone.common_options, "max_length": 512}

    def read(self, cell: str, base: Path) -> str:
        return read_text(cell, base)

    def preprocess(self, source: str) -> str:
        return source

    def template(self) -> tuple[str, str]:
        after = "\n" + self.opts["prompt"] if self.opts["prompt"] else ""
        if not self.opts["chat_template"]:
            return "", after.lstrip("\n")
        return SYSTEM_PROMPT + USER_TURN, after + ASSISTANT_TURN

    def build_parts(self, ckpt: OlaCheckpoint, dim: int) -> dict[str, nn.Module]:
        return {}

    def media_tokens(self, batch):
        embed = self.model_.lm.get_input_embeddings()
        ids = self._tokenizer(
            list(batch),
            add_special_tokens=False,
            truncation=True,
            max_length=self.opts["max_length"],
        )["input_ids"]
        return [
            embed(torch.tensor(t, dtype=torch.long, device=self.device)) for t in ids
        ]
