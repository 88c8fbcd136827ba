"""The student as an answerer: batched greedy generation, answer extraction, scoring.

Prompts come from the pack's ``student.jinja`` (plus its system prompt) rendered through the
student's chat template; the same messages are what training teaches, so evaluation and training
never disagree on format.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path

from failforward.tools.packs.pack import Pack
from failforward.tools.records import Item, StudentAttempt
from failforward.tools.verify.verifiers import Verifier, extract_answer


def student_messages(pack: Pack, question: str) -> list[dict[str, str]]:
    """The chat messages the student sees for ``question`` (no answer)."""
    messages = []
    if pack.spec.student.system_prompt:
        messages.append({"role": "system", "content": pack.spec.student.system_prompt})
    messages.append({"role": "user", "content": pack.render("student", question=question)})
    return messages


def generate(
    model,
    tokenizer,
    prompts: list[list[dict]],
    max_new_tokens: int,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
    sampling: dict | None = None,
) -> list[str]:
    """Greedy replies, one per chat prompt, batched by length to keep padding small
    (``sampling``: ``model.generate``'s arguments instead, as :func:`decode_batch` takes them)."""
    texts, batches = prompt_batches(tokenizer, prompts, batch_size)
    replies: list[str] = [""] * len(texts)
    for chunk in batches:
        decoded = decode_batch(
            model, tokenizer, [texts[i] for i in chunk], max_new_tokens, sampling
        )
        for i, reply in zip(chunk, decoded, strict=True):
            replies[i] = reply
        if on_batch:
            on_batch(len(chunk))
    return replies


def prompt_batches(
    tokenizer, prompts: list[list[dict]], batch_size: int
) -> tuple[list[str], list[list[int]]]:
    """The prompts rendered through the chat template, and the batches :func:`generate` decodes
    them in (indices into the prompts, shortest texts first). Whoever decodes the same batches
    gets the same replies, in this process or on a worker."""
    texts = [
        tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
        for p in prompts
    ]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return texts, [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def decode_batch(
    model, tokenizer, texts: list[str], max_new_tokens: int, sampling: dict | None = None
) -> list[str]:
    """Greedy replies to rendered prompt texts, decoded as one left-padded batch
    (:func:`greedy_tokens`); with ``sampling`` (``generate``'s sampling arguments) sampled ones
    instead, ``num_return_sequences`` per text, a text's together."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    if sampling is None:
        new_tokens = greedy_tokens(
            model, batch["input_ids"], batch["attention_mask"], max_new_tokens
        )
    else:
        with torch.inference_mode():
            out = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                **sampling,
            )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
    return [reply.strip() for reply in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def greedy_tokens(model, input_ids, attention_mask, max_new_tokens: int) -> list[list[int]]:
    """Each left-padded prompt's greedy reply tokens (its end-of-sequence token included), as
    ``model.generate`` would give them, except that a finished reply leaves the batch at once:
    its rows leave the KV cache, so the steps after it cost only the replies still going.
    ``generate`` decodes every row until the batch's longest reply ends, and most replies are
    far shorter than the longest (``benchmarks/eval_speed.py``: the same replies, 1.2-1.4x
    faster on CPU)."""
    import inspect

    import torch

    stop = model.generation_config.eos_token_id
    stop = torch.tensor(stop if isinstance(stop, list) else [stop], device=input_ids.device)
    position = attention_mask.long().cumsum(-1) - 1
    position.masked_fill_(attention_mask == 0, 1)
    takes = inspect.signature(model.forward).parameters
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in takes else {}
    cache_name = "cache" if "cache" in takes else "past_key_values"  # renamed in transformers 5
    replies: list[list[int]] = [[] for _ in range(len(input_ids))]
    rows = torch.arange(len(input_ids))
    mask, at = attention_mask, position[:, -1:]
    with torch.inference_mode():
        out = model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=position,
            use_cache=True,
            **last_only,
        )
        cache = getattr(out, cache_name)
        for step in range(max_new_tokens):
            chosen = out.logits[:, -1, :].argmax(-1)
            for row, token in zip(rows.tolist(), chosen.tolist(), strict=True):
                replies[row].append(token)
            going = ~torch.isin(chosen, stop)
            if step == max_new_tokens - 1 or not going.any():
                break
            if not going.all():
                keep = going.nonzero().squeeze(1)
                rows, chosen, mask, at = rows[keep.cpu()], chosen[keep], mask[keep], at[keep]
                cache.batch_select_indices(keep)
            mask = torch.cat([mask, mask.new_ones(len(chosen), 1)], dim=1)
            at = at + 1
            out = model(
                input_ids=chosen[:, None],
                attention_mask=mask,
                position_ids=at,
                use_cache=True,
                **{cache_name: cache},
            )
    return replies


def sample_replies(
    model,
    tokenizer,
    prompts: list[list[dict]],
    max_new_tokens: int,
    k: int,
    temperature: float,
    seed: int,
    batch_size: int = 16,
) -> list[list[str]]:
    """``k`` sampled replies per chat prompt at ``temperature``, batched as :func:`generate`
    batches them; each batch draws from ``seed`` plus its index, so the same prompts give the
    same samples whatever ran before."""
    import torch

    texts, batches = prompt_batches(tokenizer, prompts, batch_size)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
    sampling["num_return_sequences"] = k
    replies: list[list[str]] = [[] for _ in texts]
    for n, chunk in enumerate(batches):
        torch.manual_seed(seed + n)
        decoded = decode_batch(
            model, tokenizer, [texts[i] for i in chunk], max_new_tokens, sampling
        )
        for j, i in enumerate(chunk):
            replies[i] = decoded[j * k : (j + 1) * k]
    return replies


def merged_copy(model):
    """A LoRA adapter model's copy with the adapter merged into its weights (``merge_and_unload``:
    the same function without PEFT's extra matmuls), in evaluation mode; ``model`` is unchanged."""
    import copy

    merged = copy.deepcopy(model).merge_and_unload()
    merged.eval()
    return merged


# Adapter ranks vLLM can serve (max_lora_rank must be one of them).
_VLLM_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def vllm_usable() -> bool:
    """CUDA is present and the ``gpu`` extra (vLLM) is installed."""
    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None


class VLLMStudent:
    """Greedy answers through vLLM: one engine on the base model per run, each cycle's LoRA
    adapter applied per request (whole-model checkpoints are answered by transformers)."""

    def __init__(self, base_dir: Path, lora_rank: int, memory_fraction: float = 0.3):
        from vllm import LLM

        rank = next((r for r in _VLLM_RANKS if r >= lora_rank), lora_rank)
        self.llm = LLM(
            model=str(base_dir),
            enable_lora=True,
            max_lora_rank=rank,
            max_loras=1,
            dtype="bfloat16",
            gpu_memory_utilization=memory_fraction,  # the trainer shares the GPU
            seed=0,
        )
        self._adapter_ids: dict[str, int] = {}

    def generate(
        self, prompts: list[list[dict]], max_new_tokens: int, adapter: Path | None
    ) -> list[str]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        request = None
        if adapter is not None:
            lora_id = self._adapter_ids.setdefault(str(adapter), len(self._adapter_ids) + 1)
            request = LoRARequest(f"student-{lora_id}", lora_id, str(adapter))
        outputs = self.llm.chat(
            prompts,
            SamplingParams(temperature=0.0, max_tokens=max_new_tokens),
            lora_request=request,
            use_tqdm=False,
        )
        return [o.outputs[0].text.strip() for o in outputs]


def answer_items(
    model,
    tokenizer,
    pack: Pack,
    items: list[Item],
    verifier: Verifier,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
    replies_for: Callable[[list[list[dict]], int], list[str]] | None = None,
) -> list[StudentAttempt]:
    """The student's scored attempt at each item. ``replies_for(prompts, max_new_tokens)``
    replaces transformers generation (the vLLM path)."""
    prompts = [student_messages(pack, item.question) for item in items]
    max_new_tokens = pack.spec.student.max_new_tokens
    if replies_for is None:
        replies = generate(model, tokenizer, prompts, max_new_tokens, batch_size, on_batch)
    else:
        replies = replies_for(prompts, max_new_tokens)
        if on_batch:
            on_batch(len(items))
    attempts = []
    for item, reply in zip(items, replies, strict=True):
        extracted = extract_answer(reply, pack.spec.answer.pattern, pack.spec.answer.pick)
        score = verifier(extracted, item).score if extracted else 0.0
        attempts.append(StudentAttempt(item=item, output=reply, extracted=extracted, score=score))
    return attempts


def verifier_reward(pack: Pack, verifier: Verifier) -> Callable[[str, dict], float]:
    """GRPO's reward: the pack's verifier on the answer extracted from a sampled completion
    (``row`` holds the item's question, answer and JSON metadata)."""
    answer = pack.spec.answer

    def reward(text: str, row: dict) -> float:
        extracted = extract_answer(text, answer.pattern, answer.pick)
        if not extracted:
            return 0.0
        metadata = json.loads(row["metadata"])
        item = Item(question=row["question"], answer=row["answer"], metadata=metadata)
        return verifier(extracted, item).score

    return reward


# The untrained student's replies per (model, engine, batch size, max tokens, prompts).
BASE_REPLIES: dict[tuple, list[str]] = {}


class Student:
    """The run's student: its base model, loaded once and kept at the checkpoint the loop is at,
    answering with the engine the run chose, and saving the checkpoints training makes.

    ``engine`` is ``auto`` (vLLM on CUDA with the gpu extra, else transformers), ``transformers``
    or ``vllm``. vLLM answers the base model and LoRA checkpoints; a whole-model checkpoint is
    answered by transformers. ``workers(student)``, where given, makes the Ray workers
    (:class:`~failforward.agents.workers.StudentWorkers`) that answer instead of this process,
    on first use; training still runs here.

    Example:
        >>> student = Student("tiny")                                   # doctest: +SKIP
        >>> attempts = student.answer(None, pack, items, verifier)
    """

    def __init__(
        self,
        spec: str,
        engine: str = "auto",
        lora_rank: int = 16,
        log: Callable[[str], None] = print,
        workers: Callable[[Student], object] | None = None,
    ):
        self.spec, self.engine, self.lora_rank, self.log = spec, engine, lora_rank, log
        self._loaded: tuple[str | None, object, object] | None = None
        self._merged: tuple[tuple[str | None, int], object] | None = None
        self._vllm: VLLMStudent | None = None
        self._make_workers, self._workers = workers, None
        self._base_dir: Path | None = None

    def close(self) -> None:
        """Stop the Ray workers, if any were started (the next answer starts new ones)."""
        if self._workers is not None:
            self._workers.close()
            self._workers = None

    def base_dir(self) -> Path:
        """The model folder ``spec`` resolves to, resolved once: an earlier run's student stays
        the one this process started from while that run goes on."""
        from failforward.training.student_model import resolve_student

        def announce(target: Path) -> None:
            self.log(f"converting the packaged SmolLM2 GGUF to safetensors once, into {target} ...")

        if self._base_dir is None:
            self._base_dir = resolve_student(self.spec, announce)
        return self._base_dir

    def at(self, checkpoint: str | None):
        """``(model, tokenizer)`` at ``checkpoint`` (None: the base model); loaded once."""
        from failforward.training import student_model

        if self._loaded and self._loaded[0] == checkpoint:
            return self._loaded[1], self._loaded[2]
        target = Path(checkpoint) if checkpoint else None
        model, tokenizer = student_model.load_student(self.base_dir(), target)
        self._loaded = (checkpoint, model, tokenizer)
        return model, tokenizer

    def answering(self, checkpoint: str | None):
        """``(model, tokenizer)`` to answer with at ``checkpoint``: a LoRA adapter model merged
        into a copy of itself (made once per checkpoint), which gives the same greedy replies
        about 1.15x faster on CPU (``benchmarks/eval_speed.py``); the adapter model :meth:`at`
        keeps is the one training goes on from, untouched."""
        model, tokenizer = self.at(checkpoint)
        if not hasattr(model, "merge_and_unload"):  # the base model or a whole-model checkpoint
            return model, tokenizer
        key = (checkpoint, id(model))
        if self._merged is None or self._merged[0] != key:
            self._merged = None  # the previous copy goes before the next is made
            self._merged = (key, merged_copy(model))
        return self._merged[1], tokenizer

    def save(self, model, tokenizer, target: Path) -> str:
        """Checkpoint a trained ``model`` (LoRA adapter or whole model); it becomes the one
        :meth:`at` returns for that checkpoint without loading it again."""
        from failforward.training.offpolicy import save_checkpoint

        checkpoint = str(save_checkpoint(model, tokenizer, target))
        self._loaded = (checkpoint, model, tokenizer)
        return checkpoint

    def answer(
        self,
        checkpoint: str | None,
        pack: Pack,
        items: list[Item],
        verifier: Verifier,
        batch_size: int = 16,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[StudentAttempt]:
        """The student's scored attempts at ``items``, at ``checkpoint``.

        The untrained student's replies (``checkpoint`` None) are kept for the process
        (:data:`BASE_REPLIES`): greedy decoding of the same prompts in the same batches gives the
        same replies, so the runs of a comparison (both arms, every seed) answer their shared
        cycle-0 evaluation once. Replies are scored afresh each time."""
        key = None
        if checkpoint is None:
            prompts = [student_messages(pack, item.question) for item in items]
            tokens = pack.spec.student.max_new_tokens
            key = (str(self.base_dir()), self.engine, batch_size, tokens, json.dumps(prompts))
            if key in BASE_REPLIES:
                kept = BASE_REPLIES[key]
                return answer_items(
                    None,
                    None,
                    pack,
                    items,
                    verifier,
                    on_batch=on_batch,
                    replies_for=lambda prompts, max_new_tokens: list(kept),
                )
        if self._make_workers is not None:
            if self._workers is None:
                self._workers = self._make_workers(self)
            replies_for = self._workers.replies_for(checkpoint, batch_size, on_batch)
            attempts = answer_items(None, None, pack, items, verifier, replies_for=replies_for)
        else:
            model, tokenizer = self.answering(checkpoint)
            replies_for = self._vllm_replies(checkpoint)
            attempts = answer_items(
                model, tokenizer, pack, items, verifier, batch_size, on_batch, replies_for
            )
        if key is not None:
            while len(BASE_REPLIES) >= 8:  # a few sets' worth; the oldest goes first
                BASE_REPLIES.pop(next(iter(BASE_REPLIES)))
            BASE_REPLIES[key] = [a.output for a in attempts]
        return attempts

    def success_rates(
        self,
        checkpoint: str | None,
        pack: Pack,
        items: list[Item],
        verifier: Verifier,
        k: int,
        temperature: float,
        seed: int,
        batch_size: int = 16,
    ) -> list[float]:
        """Per item, the share of ``k`` replies sampled at ``temperature`` (from ``seed``) that
        the verifier scores right: how often the student succeeds, not whether its greedy reply
        does. Sampled in this process with transformers, whatever the engine."""
        model, tokenizer = self.answering(checkpoint)
        prompts = [student_messages(pack, item.question) for item in items]
        tokens = pack.spec.student.max_new_tokens
        sampled = sample_replies(
            model, tokenizer, prompts, tokens, k, temperature, seed, batch_size
        )
        answer = pack.spec.answer
        rates = []
        for item, replies in zip(items, sampled, strict=True):
            extracted = [extract_answer(r, answer.pattern, answer.pick) for r in replies]
            rates.append(sum(bool(e) and verifier(e, item).score >= 1.0 for e in extracted) / k)
        return rates

    def _vllm_replies(self, checkpoint: str | None):
        """vLLM generation where the engine allows it (None: transformers answers)."""
        if self.engine == "transformers" or (self.engine == "auto" and not vllm_usable()):
            return None
        adapter = Path(checkpoint) if checkpoint else None
        if adapter is not None and not (adapter / "adapter_config.json").is_file():
            return None  # a whole-model checkpoint: transformers answers it
        if self._vllm is None:
            self.log("evaluating with vLLM (CUDA, gpu extra installed)")
            self._vllm = VLLMStudent(self.base_dir(), self.lora_rank)
        engine = self._vllm
        return lambda prompts, max_new_tokens: engine.generate(prompts, max_new_tokens, adapter)
