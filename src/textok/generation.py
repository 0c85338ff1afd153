"""Sampling images: a DiT generates latent tokens, the TexTok detokenizer turns them into pixels.

A generation folder (what ``textok train-dit`` writes as ``<run>/model``) is self-contained, the way a
diffusers pipeline is: it moves to another machine or to the Hub as it is.

    model/
      generation.json     GenerationConfig: latent statistics, diffusion settings, classes; no absolute path
      dit/                the DiT (config.json + model.safetensors)
      tokenizer/          the TexTok that decodes its tokens (or generation.json names a Hub repo id instead)
      caption_pool.json   class name -> held-out captions (class-conditional DiTs)

``Pipeline.from_pretrained(folder or Hub repo id)`` loads all of it (the tokenizer through
``CaptionedTokenizer.from_pretrained``); ``save_pretrained`` and ``push_to_hub`` write it. A folder written
before this layout (the DiT at its top, the tokenizer by path) still loads, with a note on how to re-save it.

- Class-conditional: the DiT generates tokens from the class; a caption for that class is
  drawn from the held-out caption pool (JSON: class name -> captions never used in training)
  and given to the detokenizer, as in the paper. Without a pool the caption is the data
  loader's default, ``"a photo of a {class}"``.
- Text-to-image (DiT-T2I): the prompt's embedding conditions both the DiT and the detokenizer.

Same seed, same images: the initial noise, every sampler step and the caption draws come from
generators seeded by ``seed``. ``sample_fid`` writes class-balanced samples in the ADM layout
(``arr_0``: uint8 [N, H, W, 3]; ``arr_1``: labels for class-conditional models), sharded over
the processes of ``accelerate launch`` and resumable batch by batch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .conditioning import DIT_MAX_TEXT_TOKENS, TextConditioner, load_encoder
from .config import from_dict, to_dict, with_fields
from .data.datasets import load_caption_pool
from .diffusion import Condition, DiffusionConfig, build_diffusion, conditional_model, guided_model
from .hub import is_repo_id, push_folder, resolve_folder
from .io import write_json_atomic
from .models.dit import DiT, DiTConfig
from .models.textok import TexTok
from .tokenizer import CaptionedTokenizer

log = logging.getLogger(__name__)

GENERATION_NAME = "generation.json"
DIT_FOLDER, TOKENIZER_FOLDER, POOL_NAME = "dit", "tokenizer", "caption_pool.json"
#: what a generation folder holds on the Hub (downloaded and uploaded): JSON and safetensors, never a pickle
HUB_PATTERNS = [GENERATION_NAME, POOL_NAME, "*/config.json", "*.safetensors"]
CAPTION_CHOICES = ("random", "cycle")


@dataclasses.dataclass
class GenerationConfig:
    """``generation.json``: everything besides the DiT weights that sampling needs."""

    # the tokenizer: "tokenizer" (the folder's subfolder), or a Hub repo id. A pipeline built in memory may hold
    # anything here (save_pretrained writes the subfolder unless this names a Hub repo).
    tokenizer: str
    latent_mean: list[float]  # per-channel statistics [d] the DiT's inputs were normalised with
    latent_std: list[float]
    diffusion: DiffusionConfig = dataclasses.field(default_factory=DiffusionConfig)
    classes: list[str] = dataclasses.field(default_factory=list)  # class names by label
    caption_pool: str | None = None  # JSON class name -> captions (held-out); "caption_pool.json" in the folder
    text_encoder: str = "minilm"  # embeds prompts for DiT-T2I
    # class-conditional: how the detokenizer's caption is taken from the class's pool: "random" (a uniform
    # draw) or "cycle" (of up to caption_candidates pool captions, the one that best explains the sampled
    # tokens: CaptionedTokenizer.choose_captions)
    caption_choice: str = "random"
    caption_candidates: int = 16
    tokenizer_revision: str | None = None  # the Hub revision of a tokenizer named by repo id


#: generation.json keys of the layout before the folder held its tokenizer (read, never written)
LEGACY_KEYS = ("tokenizer_absolute", "caption_pool_absolute")


def check_compatible(dit: DiTConfig, diffusion: DiffusionConfig | None = None,
                     tokens: tuple[int, int] | None = None, tokens_from: str = "the tokenizer decodes",
                     latent_stats: tuple[Sequence[float], Sequence[float]] | None = None) -> None:
    """The one check that a DiT fits its sampler (``diffusion``), the tokens [N, d] of its tokenizer (or of a latent
    cache: ``tokens_from`` says whose) and the per-channel latent statistics its inputs were normalised with.
    ``ValueError`` naming the first mismatch, by config field."""
    if diffusion is not None:
        if diffusion.learned_variance != dit.learn_sigma:
            raise ValueError(f"diffusion.learned_variance={diffusion.learned_variance} must equal "
                             f"model.learn_sigma={dit.learn_sigma} (2d output channels iff the variance is learned)")
        meanflow = diffusion.objective == "meanflow"
        if meanflow != (dit.time_inputs == 2):
            raise ValueError(f"diffusion.objective={diffusion.objective!r} needs model.time_inputs="
                             f"{2 if meanflow else 1} (got {dit.time_inputs}): MeanFlow's DiT embeds t and t - r, "
                             "the others only t")
    if tokens is not None and tuple(tokens) != (dit.num_tokens, dit.token_dim):
        N, d = tokens
        raise ValueError(f"model.num_tokens/token_dim = {dit.num_tokens}/{dit.token_dim}, but {tokens_from} [{N}, {d}] "
                         f"tokens: set model.num_tokens={N} model.token_dim={d}")
    if latent_stats is not None and any(len(s) != dit.token_dim for s in latent_stats):
        raise ValueError(f"latent statistics must have {dit.token_dim} channels, got "
                         f"{len(latent_stats[0])} and {len(latent_stats[1])}")


def pool_by_label(pool: dict[str, list[str]], classes: Sequence[str], where: str | os.PathLike) -> dict[int, list[str]]:
    """A caption pool (class name -> captions, ``textok.data.load_caption_pool``) keyed by label: class names
    map through ``classes``, label numbers stay; empty captions are dropped."""
    index = {name: i for i, name in enumerate(classes)}
    out: dict[int, list[str]] = {}
    for key, captions in pool.items():
        if key in index:
            label = index[key]
        elif key.isdigit():
            label = int(key)
        else:
            raise ValueError(f"{where}: class {key!r} is not among the model's classes {list(classes)[:10]}")
        out[label] = [c for c in captions if c.strip()]
    return out


def _read_generation_json(folder: Path) -> dict:
    path = folder / GENERATION_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no {GENERATION_NAME}; not a generation folder "
                                "(give the model/ folder that `textok train-dit` wrote)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a generation config (a JSON object)")
    return data


def _legacy_locate(directory: Path, stored: str, absolute: str | None, what: str, is_ok) -> Path:
    """An old folder's ``stored`` path resolved from ``directory`` (relative paths move with the folder), else the
    absolute path recorded at save time; an error naming both when neither exists."""
    tried = [(directory / stored).resolve()] + ([Path(absolute)] if absolute else [])
    for path in tried:
        if is_ok(path):
            return path
    raise FileNotFoundError(f"{directory / GENERATION_NAME}: the {what} is not at " + " nor at ".join(map(str, tried))
                            + f"; put it back or edit '{what}' in {GENERATION_NAME}")


def _load_legacy(directory: Path, config: GenerationConfig, legacy: dict, device):
    """An old folder's parts: the DiT at its top, the tokenizer and the caption pool where its paths say (relative to
    the folder, else absolute); -> (DiT, tokenizer, pool path or None, config naming the tokenizer found)."""
    log.warning("%s: an old generation folder (its tokenizer at %s): it loads here, but moves only with that path; "
                "Pipeline.from_pretrained(OLD).save_pretrained(NEW) writes a self-contained one",
                directory, config.tokenizer)
    dit = DiT.from_pretrained(directory, map_location=device)
    tok_dir = _legacy_locate(directory, config.tokenizer, legacy.get("tokenizer_absolute"), "tokenizer", Path.is_dir)
    tokenizer = CaptionedTokenizer.from_pretrained(tok_dir, device)
    pool_path = _legacy_locate(directory, config.caption_pool, legacy.get("caption_pool_absolute"), "caption_pool",
                               Path.is_file) if config.caption_pool else None
    return dit, tokenizer, pool_path, dataclasses.replace(config, tokenizer=str(tok_dir))


class Pipeline:
    """DiT + TexTok detokenizer + diffusion: ``pipe(labels=[3, 3])`` or ``pipe(prompts=["a red apple"])``
    -> images [B, 3, H, W] in [-1, 1].

    ``Pipeline(dit, tokenizer, config, pool=None, text_encoder=None, text_data=None)``: ``tokenizer`` a ``TexTok``
    (its captions embedded by the pipeline's encoders, below) or a ``CaptionedTokenizer`` (used as it is);
    ``pool``: label -> captions; ``text_encoder``: a loaded text encoder to use instead of loading one;
    ``text_data``: a data set folder whose text cache embeds the captions it holds, as training saw them.
    ``pipe.dit`` and ``pipe.tokenizer`` are the two ``nn.Module``s; ``pipe.detokenizer`` the captioned tokenizer.
    """

    def __init__(self, dit: DiT, tokenizer: TexTok | CaptionedTokenizer, config: GenerationConfig,
                 pool: dict[int, list[str]] | None = None, text_encoder=None, text_data: str | os.PathLike | None = None):
        # the detokenizer with its captions (built on first use from the encoders below, unless given)
        self._detokenizer = tokenizer if isinstance(tokenizer, CaptionedTokenizer) else None
        tokenizer = tokenizer.model if isinstance(tokenizer, CaptionedTokenizer) else tokenizer
        tc = tokenizer.config
        check_compatible(dit.config, config.diffusion, (tc.num_tokens, tc.token_dim),
                         latent_stats=(config.latent_mean, config.latent_std))
        self.dit, self.tokenizer, self.config = dit.eval(), tokenizer.eval(), config
        self.diffusion = build_diffusion(config.diffusion)
        self.pool = pool or {}
        self.device = next(dit.parameters()).device
        # loaded text encoders by (name, device) (textok.conditioning.load_encoder); a given one is used as is
        self._encoders = {} if text_encoder is None else {(text_encoder.name, str(self.device)): text_encoder}
        # a data set whose text cache embeds the captions it holds, as training saw them (the encoder
        # is then loaded only for a caption the cache lacks)
        self.text_data = text_data
        self._conditioners: dict[tuple[str, int | None], TextConditioner] = {}
        self.mean = torch.tensor(config.latent_mean, dtype=torch.float32, device=self.device)
        self.std = torch.tensor(config.latent_std, dtype=torch.float32, device=self.device)

    # ---- loading and saving -------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, device: str | torch.device = "cpu", text_encoder=None,
                        text_data: str | os.PathLike | None = None, caption_pool: str | os.PathLike | None = None, *,
                        revision: str | None = None) -> "Pipeline":
        """The pipeline saved in a folder, or in a Hub repo ``"org/name"`` (at ``revision``); ``text_data``: a data
        set folder whose text cache embeds the prompts and captions it holds (as in training), instead of the text
        encoder; ``caption_pool``: a caption pool file (class name -> captions) the detokenizer draws from instead
        of the folder's."""
        directory = resolve_folder(name_or_path, revision=revision, allow_patterns=HUB_PATTERNS,
                                   required=GENERATION_NAME)
        data = _read_generation_json(directory)
        legacy = {k: data.pop(k) for k in LEGACY_KEYS if k in data}
        config = from_dict(GenerationConfig, data, where=str(directory / GENERATION_NAME))
        if (directory / DIT_FOLDER).is_dir():
            dit = DiT.from_pretrained(directory / DIT_FOLDER, map_location=device)
            tok_ref = config.tokenizer
            if (directory / tok_ref).is_dir() or not is_repo_id(tok_ref):
                tok_ref = directory / tok_ref  # the folder's own (a missing one: the loader names it)
            tokenizer = CaptionedTokenizer.from_pretrained(tok_ref, device, revision=config.tokenizer_revision)
            pool_path = directory / config.caption_pool if config.caption_pool else None
        else:
            dit, tokenizer, pool_path, config = _load_legacy(directory, config, legacy, device)
        if caption_pool is not None:  # a pool given here replaces the folder's (which need not exist then)
            pool_path = Path(caption_pool).expanduser()
        pool = None
        if pool_path is not None:  # a missing given pool: load_caption_pool names it, not generation.json
            pool_path = pool_path.resolve()
            pool = pool_by_label(load_caption_pool(pool_path), config.classes, pool_path)
            config = dataclasses.replace(config, caption_pool=str(pool_path))  # absolute in memory: which pool
        # the model alone: its captions go through this pipeline's encoders (text_data, text_encoder)
        return cls(dit, tokenizer.model, config, pool, text_encoder, text_data)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write the self-contained folder: ``dit/``, ``tokenizer/`` (unless ``config.tokenizer`` names a Hub repo
        id: then that id), ``caption_pool.json`` (the pool, by class name) and ``generation.json``; no path in it
        points outside the folder."""
        directory = Path(directory)
        self.dit.save_pretrained(directory / DIT_FOLDER)
        config = dataclasses.replace(self.config)
        if not is_repo_id(config.tokenizer):
            self.tokenizer.save_pretrained(directory / TOKENIZER_FOLDER)
            config.tokenizer, config.tokenizer_revision = TOKENIZER_FOLDER, None
        config.caption_pool = None
        if self.pool:
            names = self.config.classes
            write_json_atomic(directory / POOL_NAME,
                              {(names[y] if y < len(names) else str(y)): c for y, c in sorted(self.pool.items())})
            config.caption_pool = POOL_NAME
        write_json_atomic(directory / GENERATION_NAME, to_dict(config))
        return directory

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    revision: str | None = None, commit_message: str | None = None, create_pr: bool = False):
        """Upload this pipeline's folder (``save_pretrained``) to the Hub repo ``repo_id`` (created if missing);
        returns the ``CommitInfo``. ``from_pretrained(repo_id)`` loads it back."""
        with tempfile.TemporaryDirectory(prefix="textok-push-") as tmp:
            self.save_pretrained(tmp)
            return push_folder(tmp, repo_id, private=private, token=token, revision=revision, create_pr=create_pr,
                               commit_message=commit_message or "Upload TexTok generation pipeline",
                               allow_patterns=HUB_PATTERNS)

    # ---- conditions -----------------------------------------------------------------------
    def encoder(self, name: str, max_tokens: int | None = None):
        """Text encoder ``name`` (loaded once), cut at ``max_tokens`` tokens; with ``text_data``, its text
        cache first (a ``TextConditioner``, which loads the encoder only for a caption the cache lacks)."""
        if self.text_data is None:
            return load_encoder(name, self.device, max_tokens, pool=self._encoders)
        key = (str(name), max_tokens)
        if key not in self._conditioners:
            cut = max_tokens if max_tokens is not None else DIT_MAX_TEXT_TOKENS
            # the encoder's conditioners (one per max_tokens) share one table: the first loads it
            shared = next((c.cache for (n, _), c in self._conditioners.items() if n == str(name)), None)
            self._conditioners[key] = TextConditioner(str(name), cut, self.text_data, pool=self._encoders,
                                                      cache=shared).to(self.device)
        return self._conditioners[key]

    @property
    def detokenizer(self) -> CaptionedTokenizer:
        """The tokenizer with its captions, embedded by ``encoder`` (the data set's text cache first, with
        ``text_data``) at the tokenizer's ``max_text_tokens``."""
        if self._detokenizer is None:
            tc = self.tokenizer.config
            text = self.encoder(tc.text_encoder, tc.max_text_tokens) if tc.text_in_decoder else None
            self._detokenizer = CaptionedTokenizer(self.tokenizer, text)
        return self._detokenizer

    def class_pool(self, label: int) -> list[str]:
        """The captions the detokenizer may decode class ``label`` with: its pool, else the default caption."""
        captions = self.pool.get(int(label))
        if captions:
            return captions
        name = self.config.classes[label] if label < len(self.config.classes) else str(label)
        return [f"a photo of a {name.replace('_', ' ')}"]

    def class_captions(self, labels: Sequence[int], rng: random.Random) -> list[str]:
        """One caption per label, drawn from the pool (or the default caption)."""
        out = []
        for y in labels:
            captions = self.pool.get(int(y))
            out.append(captions[rng.randrange(len(captions))] if captions else self.class_pool(y)[0])
        return out

    def chosen_captions(self, tokens: torch.Tensor, labels: Sequence[int], rng: random.Random) -> list[str]:
        """``caption_choice="cycle"``: for each sampled token set [N, d] of ``tokens`` [B, N, d], the caption of its
        class's pool (up to ``caption_candidates`` of them, drawn with ``rng``) that best explains it
        (``CaptionedTokenizer.choose_captions``)."""
        k = self.config.caption_candidates
        candidates = []
        for y in labels:
            pool = self.class_pool(y)
            candidates.append(pool if len(pool) <= k else rng.sample(pool, k))
        if not self.tokenizer.config.text_in_decoder:  # the detokenizer sees no text: nothing to choose, no encoder
            return [c[0] for c in candidates]
        return self.detokenizer.choose_captions(tokens, candidates)

    # ---- sampling -------------------------------------------------------------------------
    def resolve_caption_choice(self, caption_choice: str | None = None) -> str:
        """``caption_choice`` with the model's default filled in; checked."""
        choice = caption_choice or self.config.caption_choice
        if choice not in CAPTION_CHOICES:
            raise ValueError(f"caption_choice must be one of {CAPTION_CHOICES}, got {choice!r}")
        if caption_choice is not None and choice != "random" and self.dit.config.condition != "class":
            raise ValueError(f"caption_choice={choice!r} is for class-conditional DiTs (this one is "
                             f"{self.dit.config.condition!r}: the detokenizer decodes with the prompt)")
        if self.config.caption_candidates < 1:
            raise ValueError(f"caption_candidates must be >= 1, got {self.config.caption_candidates}")
        return choice

    def resolve_settings(self, cfg_scale: float | None = None, steps: int | None = None,
                         sampler: str | None = None) -> tuple[float, int, str]:
        """``(cfg_scale, steps, sampler)`` with the model's defaults filled in; only ``None`` means
        "default" (``steps=0`` is an error, not 250)."""
        dcfg = self.config.diffusion
        sampler = sampler or dcfg.default_sampler
        if steps is not None and (isinstance(steps, bool) or int(steps) != steps or steps < 1):
            raise ValueError(f"--steps must be a whole number >= 1, got {steps}")
        steps = int(steps) if steps is not None else dcfg.default_steps(sampler)
        cfg_scale = dcfg.cfg_scale if cfg_scale is None else float(cfg_scale)
        if not math.isfinite(cfg_scale):
            raise ValueError(f"--cfg must be a finite number, got {cfg_scale}")
        return cfg_scale, steps, sampler

    def fingerprint(self) -> str:
        """SHA-256 of the DiT's and the tokenizer's weights: which model made a set of samples."""
        from .io import state_fingerprint

        return state_fingerprint(self.dit, self.tokenizer)

    @torch.no_grad()
    def __call__(self, labels: Sequence[int] | torch.Tensor | None = None, prompts: Sequence[str] | None = None,
                 cfg_scale: float | None = None, steps: int | None = None, sampler: str | None = None, seed: int = 0,
                 captions: Sequence[str] | None = None, progress: bool = False, return_tokens: bool = False,
                 caption_choice: str | None = None):
        """Generate one image per label (class-conditional) or per prompt (text-to-image).

        ``captions`` overrides the detokenizer's captions of a class-conditional model (default: taken
        from the pool by ``caption_choice``, default the model's ``config.caption_choice``: "random" draws
        one, "cycle" picks the one that best explains the sampled tokens). Returns images [B, 3, H, W] in
        [-1, 1] (and the tokens [B, N, d]).
        """
        dc = self.dit.config
        cfg_scale, steps, sampler = self.resolve_settings(cfg_scale, steps, sampler)
        choice = self.resolve_caption_choice(caption_choice)
        rng = random.Random(seed)
        if dc.condition == "class":
            if labels is None or prompts is not None:
                raise ValueError("this DiT is class-conditional: give class labels (--class), not prompts")
            labels = torch.as_tensor(labels, dtype=torch.long).flatten()
            if len(labels) == 0 or labels.min() < 0 or labels.max() >= dc.num_classes:
                raise ValueError(f"class labels must lie in [0, {dc.num_classes}), got {labels.tolist()}")
            B = len(labels)
            cond = Condition(labels=labels.to(self.device))
            dec_captions = list(captions) if captions is not None else (
                None if choice == "cycle" else self.class_captions(labels.tolist(), rng))  # cycle: once sampled
            dit_text = None
        elif dc.condition == "text":
            if not prompts or labels is not None:
                raise ValueError("this DiT is text-to-image (DiT-T2I): give prompts (--prompt), not class labels")
            prompts = list(prompts)
            B = len(prompts)
            dit_text = self.encoder(self.config.text_encoder, DIT_MAX_TEXT_TOKENS)(prompts).to(self.device)
            cond = Condition(text=dit_text)
            dec_captions = prompts
        else:
            B = len(labels) if labels is not None else len(prompts or [])
            if B == 0:
                raise ValueError("unconditional DiT: give the number of images through labels=[0]*n")
            cond, dit_text = Condition(), None
            dec_captions = list(captions) if captions is not None else [""] * B
        if dc.condition == "class" and cfg_scale != 1.0 and dc.class_dropout == 0:
            log.warning("guidance scale %.2f on a DiT trained without label dropout: its null class is untrained", cfg_scale)
        g = torch.Generator(device=self.device).manual_seed(seed)
        model_fn = guided_model(self.dit, cond, cfg_scale) if dc.condition != "none" else conditional_model(self.dit, cond)
        z = self.diffusion.sample(model_fn, (B, dc.num_tokens, dc.token_dim), steps=steps, sampler=sampler,
                                  generator=g, device=self.device, progress=progress)
        tokens = z * self.std + self.mean
        tc = self.tokenizer.config
        dec_tokens = tokens.to(next(self.tokenizer.parameters()).dtype)
        if dec_captions is None:
            dec_captions = self.chosen_captions(dec_tokens, labels.tolist(), rng)
        # the detokenizer sees captions cut at its max_text_tokens, as in training; the DiT's embedding
        # of the same prompts is reused only where no caption reached that cut
        if (dit_text is not None and tc.text_in_decoder and tc.text_encoder == self.config.text_encoder
                and dit_text.embeddings.shape[1] < tc.max_text_tokens):
            dec_captions = dit_text
        images = self.detokenizer.decode(dec_tokens, dec_captions)
        return (images, tokens) if return_tokens else images


def _pipeline(checkpoint: str | os.PathLike | Pipeline, device, text_data, caption_pool) -> Pipeline:
    """``checkpoint`` loaded (or as is, if a ``Pipeline``). The loader arguments cannot change a ready
    pipeline, so giving them with one is an error rather than silently ignored."""
    if not isinstance(checkpoint, Pipeline):
        return Pipeline.from_pretrained(checkpoint, device, text_data=text_data, caption_pool=caption_pool)
    given = [name for name, value in (("text_data", text_data), ("caption_pool", caption_pool)) if value is not None]
    if given:
        raise ValueError(f"{' and '.join(given)} cannot be applied to a loaded Pipeline; "
                         f"pass {'them' if len(given) > 1 else 'it'} to Pipeline.from_pretrained(..., "
                         f"{', '.join(f'{g}=...' for g in given)}) instead")
    return checkpoint


@dataclasses.dataclass
class SamplingSettings:
    """How the DiT samples: the flags ``textok sample`` and ``textok sample-fid`` share; None: the model's
    default (``Pipeline.resolve_settings``, ``Pipeline.resolve_caption_choice``)."""

    cfg_scale: float | None = None  # classifier-free guidance scale (1: none)
    steps: int | None = None
    sampler: str | None = None  # ddpm | ddim | euler | heun | meanflow
    seed: int = 0  # same seed, same images
    # class-conditional: how the detokenizer's caption is taken from the pool ("random" / "cycle", Pipeline.__call__)
    caption_choice: str | None = None


@dataclasses.dataclass
class SampleSettings(SamplingSettings):
    """What ``sample`` draws (the ``textok sample`` flags): ``num`` images of class ``class_id`` or of
    ``prompt`` (exactly one of them, unless the DiT is unconditional). The fields are also accepted as
    keyword arguments of ``sample``."""

    class_id: int | None = None
    prompt: str | None = None
    num: int = 16


def sample(checkpoint: str | os.PathLike | Pipeline, settings: SampleSettings | None = None, *,
           out: str | os.PathLike | None = None, nrow: int | None = None, device: str | torch.device = "cpu",
           progress: bool = False, text_data: str | os.PathLike | None = None,
           caption_pool: str | os.PathLike | None = None, **fields) -> torch.Tensor:
    """``num`` images of class ``class_id`` or of ``prompt``, drawn as ``settings`` (``SampleSettings``;
    ``**fields`` override its fields, e.g. ``sample(folder, class_id=3, num=8, steps=50)``); ``out`` (a .png,
    .jpg or .webp) gets a grid of ``nrow`` images a row. ``text_data``: a data set folder whose text cache
    embeds the captions it holds; ``caption_pool``: a pool file replacing the recorded one
    (``Pipeline.from_pretrained``); both only with a checkpoint folder (a ready ``Pipeline`` keeps its own).
    Returns [num, 3, H, W] in [-1, 1]."""
    if settings is not None and not isinstance(settings, SampleSettings):  # e.g. the old sample(folder, class_id)
        raise TypeError(f"sample: settings must be a SampleSettings, got {type(settings).__name__}; "
                        f"give the class as class_id=...")
    s = with_fields(settings or SampleSettings(), "sample", fields)
    if s.num < 1:
        raise ValueError(f"num must be >= 1, got {s.num}")
    pipe = _pipeline(checkpoint, device, text_data, caption_pool)
    if (s.class_id is None) == (s.prompt is None) and pipe.dit.config.condition != "none":
        raise ValueError("give exactly one of a class (--class) and a prompt (--prompt)")
    how = dict(cfg_scale=s.cfg_scale, steps=s.steps, sampler=s.sampler, seed=s.seed, progress=progress,
               caption_choice=s.caption_choice)  # (with a prompt, a choice other than "random" is refused there)
    if s.prompt is not None:
        images = pipe(prompts=[s.prompt] * s.num, **how)
    else:
        images = pipe(labels=[s.class_id or 0] * s.num, **how)
    if out is not None:
        from .data.transforms import make_grid, to_pil
        from .io import atomic_path

        out = Path(out)
        fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(out.suffix.lower())
        if fmt is None:
            raise ValueError(f"--out {out}: give a .png, .jpg or .webp file for the grid")
        grid = make_grid(images.cpu(), nrow=nrow or int(math.ceil(math.sqrt(s.num))))
        with atomic_path(out) as tmp:
            to_pil(grid).save(tmp, format=fmt)
    return images


PARTS_SETTINGS = "settings.json"


def _check_parts(parts: Path, settings: dict, state) -> None:
    """Create ``parts`` with ``settings.json``, or refuse an existing one made with other settings."""
    path = parts / PARTS_SETTINGS
    if state.is_main_process:
        if parts.is_dir() and any(parts.iterdir()):
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise ValueError(f"{parts}: unfinished samples of unknown settings (no readable {PARTS_SETTINGS}); "
                                 f"delete the folder to start over") from None
            diffs = [f"{k}: {saved.get(k)!r} then, {v!r} now" for k, v in settings.items() if saved.get(k) != v]
            if diffs:
                raise ValueError(f"{parts}: unfinished samples made with other settings ({'; '.join(diffs)}); "
                                 f"rerun with those settings to finish them, or delete the folder to start over")
        else:
            parts.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, settings)
    state.wait_for_everyone()


def fid_labels(num: int, num_classes: int) -> list[int]:
    """Class-balanced labels for ``num`` samples: 0, 1, ..., C-1, 0, 1, ... (each class num/C times)."""
    return [i % num_classes for i in range(num)]


@dataclasses.dataclass
class FIDSamplingSettings(SamplingSettings):
    """How ``sample_fid`` draws its samples (the ``textok sample-fid`` flags); None: the model's default.
    The fields are also accepted as keyword arguments of ``sample_fid``."""

    batch_size: int = 32  # batch b holds samples b*batch_size ... and is seeded by (seed, b)
    prompts: Sequence[str] | None = None  # text-to-image: cycled through


def sample_fid(checkpoint: str | os.PathLike | Pipeline, num: int, out: str | os.PathLike,
               settings: FIDSamplingSettings | None = None, *, device: str | torch.device | None = None,
               progress: bool = True, text_data: str | os.PathLike | None = None,
               caption_pool: str | os.PathLike | None = None, **fields) -> Path | None:
    """Write ``num`` samples to ``out`` (.npz, ADM layout: ``arr_0`` uint8 [N, H, W, 3]; ``arr_1``
    int64 labels for class-conditional models), drawn as ``settings`` (``FIDSamplingSettings``; ``**fields``
    override its fields) say.

    Class-conditional samples are class-balanced; text-to-image samples cycle through
    ``prompts``. Batch ``b`` holds samples ``b*batch_size ...`` and is seeded by (``seed``, b),
    so the result does not depend on the number of processes. Under ``accelerate launch`` the
    batches are dealt round-robin to the processes; each batch is saved under
    ``<out>.parts/`` as it finishes (a rerun skips finished batches); the main process then
    writes ``out`` atomically and removes the parts. ``text_data``: a data set folder whose text cache
    embeds the prompts and captions it holds; ``caption_pool``: a pool file replacing the recorded one
    (``Pipeline.from_pretrained``); both only with a checkpoint folder (a ready ``Pipeline`` keeps its own).
    Returns ``out`` on the main process.
    """
    s = with_fields(settings or FIDSamplingSettings(), "sample_fid", fields)
    batch_size, cfg_scale, steps, sampler, seed = s.batch_size, s.cfg_scale, s.steps, s.sampler, s.seed
    prompts, caption_choice = s.prompts, s.caption_choice
    from accelerate import PartialState

    from .data.transforms import to_uint8
    from .io import atomic_path

    if num < 1 or batch_size < 1:
        raise ValueError(f"num and batch_size must be >= 1, got {num} and {batch_size}")
    out = Path(out)
    if out.suffix != ".npz":
        raise ValueError(f"--out {out}: sample-fid writes an .npz file")
    state = PartialState(cpu=device == "cpu" or (device is None and not torch.cuda.is_available()))
    device = state.device if device is None else torch.device(device)
    pipe = _pipeline(checkpoint, device, text_data, caption_pool)
    dc = pipe.dit.config
    if dc.condition == "text":
        if not prompts:
            raise ValueError("a text-to-image DiT needs prompts for sample-fid (--prompts FILE, one per line)")
        prompts = list(prompts)
    labels = fid_labels(num, dc.num_classes) if dc.condition == "class" else [0] * num
    cfg_scale, steps, sampler = pipe.resolve_settings(cfg_scale, steps, sampler)
    choice = pipe.resolve_caption_choice(caption_choice)
    parts = out.with_name(out.name + ".parts")
    # Finished batches of an earlier run are reused only if they were made with these settings;
    # else the .npz would silently mix models, seeds or guidance scales.
    settings = {"num": num, "batch_size": batch_size, "cfg_scale": cfg_scale, "steps": steps, "sampler": sampler,
                "seed": seed, "prompts": prompts, "model": pipe.fingerprint(),
                "text_data": None if pipe.text_data is None else str(Path(pipe.text_data).resolve()),
                "caption_pool": pipe.config.caption_pool,
                **({"caption_choice": choice} if choice != "random" else {})}  # (older parts have no such key)
    _check_parts(parts, settings, state)
    num_batches = math.ceil(num / batch_size)
    mine = [b for b in range(num_batches) if b % state.num_processes == state.process_index]
    todo = [b for b in mine if not (parts / f"batch-{b:06d}.npz").is_file()]
    bar = None
    if progress and state.is_main_process and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"sample-fid (process 0 of {state.num_processes})", unit="batch")
    for b in todo:
        lo, hi = b * batch_size, min(num, (b + 1) * batch_size)
        kwargs = dict(cfg_scale=cfg_scale, steps=steps, sampler=sampler, seed=seed * 1_000_003 + b)
        if dc.condition == "class":
            kwargs["caption_choice"] = choice
        if dc.condition == "text":
            images = pipe(prompts=[prompts[i % len(prompts)] for i in range(lo, hi)], **kwargs)
        else:
            images = pipe(labels=labels[lo:hi], **kwargs)
        with atomic_path(parts / f"batch-{b:06d}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, images=to_uint8(images), labels=np.asarray(labels[lo:hi], dtype=np.int64))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    arrays, label_arrays = [], []
    for b in range(num_batches):
        with np.load(parts / f"batch-{b:06d}.npz", allow_pickle=False) as z:
            arrays.append(z["images"])
            label_arrays.append(z["labels"])
    images = np.concatenate(arrays)
    if len(images) != num:  # the settings check makes this impossible; never report a wrong count
        raise RuntimeError(f"{parts}: the batches hold {len(images)} samples, not {num}")
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            if dc.condition == "class":
                np.savez(f, images, np.concatenate(label_arrays))
            else:
                np.savez(f, images)
    for b in range(num_batches):
        (parts / f"batch-{b:06d}.npz").unlink()
    (parts / PARTS_SETTINGS).unlink()
    parts.rmdir()
    log.info("wrote %d samples %s to %s", len(images), tuple(images.shape[1:]), out)
    return out


__all__ = ["GenerationConfig", "Pipeline", "check_compatible", "CAPTION_CHOICES", "sample", "sample_fid",
           "SamplingSettings", "SampleSettings", "FIDSamplingSettings", "fid_labels", "pool_by_label", "GENERATION_NAME",
           "HUB_PATTERNS"]
