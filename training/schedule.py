"""What the Trainer will run, counted before it runs: optimizer steps, micro-batches, real and padded tokens.

Pure Python (no torch), so the plan `tunepath run` shows before training counts the batches the Trainer will
actually run, not micro-batches of full `max_seq_len` rows: prompt and prefix tuning never pack and `packing:
false` pads one example per row, so a run of short examples runs many more, narrower micro-batches than
tokens / (max_seq_len x micro_batch_size) - 96 against the 30 the plan counted for 189 garden_qa rows, 2 epochs.

- steps and micro-batches follow transformers' Trainer (trainer.py: set_initial_training_values and the epoch
  loop): ceil(rows / (micro_batch x world)) batches per epoch, grouped into optimizer steps of
  gradient_accumulation_steps (the last step of an epoch takes the remainder), max_steps or ceil(epochs x steps per
  epoch) steps, several epochs when max_steps asks for more than one.
- each micro-batch is padded to its longest row (training.data.Collator), or is one flat row without padding
  (varlen kernels). The order of the rows is a draw of the same scheme as the run's sampler: a random
  permutation (RandomSampler), or transformers' length grouping (get_length_grouped_indices: shuffled
  mega-batches of up to 50 x micro_batch x gradient_accumulation_steps rows, each sorted by length, the longest
  first). The padded tokens are therefore expected values, not the run's exact count; the steps, micro-batches
  and (for whole epochs) the real tokens are exact.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass


@dataclass
class Schedule:
    steps: int              # optimizer steps
    micro_batches: int      # forward + backward passes (per rank)
    tokens: int             # real (non-padding) tokens, as the run summary's `tokens` counts them
    padded_tokens: int      # rows x width of every collated micro-batch (as the run summary's padded_tokens)
    rows: int               # rows run (prompt tuning prepends its virtual tokens to each)
    widest: int             # the longest row: what sizes the activations
    batching: str           # packing | length_grouped | blocks | flat

    def to_dict(self) -> dict:
        return asdict(self)


def trainer_steps(rows: int, micro_batch: int, grad_accum: int, world: int, epochs: float,
                  max_steps: int | None) -> tuple[int, int, int]:
    """(optimizer steps, steps per epoch, micro-batches per epoch per rank), as transformers' Trainer computes them."""
    batches = max(math.ceil(rows / (micro_batch * world)), 1)
    per_epoch = max(batches // grad_accum + int(batches % grad_accum > 0), 1)
    steps = max_steps or math.ceil(epochs * per_epoch)
    return steps, per_epoch, batches


def _order(lengths: list[int], grouped: bool, group_size: int, rng: random.Random) -> list[int]:
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    if not grouped:
        return idx
    mult = min(len(lengths) // (group_size * 4), 50) or 1
    size = mult * group_size
    megas = [sorted(idx[i:i + size], key=lambda j: lengths[j], reverse=True) for i in range(0, len(idx), size)]
    top = max(range(len(megas)), key=lambda m: lengths[megas[m][0]])
    megas[0][0], megas[top][0] = megas[top][0], megas[0][0]
    return [j for m in megas for j in m]


def _epoch(lengths: list[int], order: list[int], micro_batch: int, n_batches: int, flat: bool) -> tuple[int, int, int]:
    """(real tokens, padded tokens, rows) of the first n_batches micro-batches of one epoch in this order."""
    real = padded = n = 0
    for b in range(n_batches):
        rows = [lengths[j] for j in order[b * micro_batch:(b + 1) * micro_batch]]
        if not rows:
            break
        real += sum(rows)
        padded += sum(rows) if flat else len(rows) * max(rows)
        n += len(rows)
    return real, padded, n


def simulate(lengths: list[int], micro_batch: int, grad_accum: int = 1, epochs: float = 1.0,
             max_steps: int | None = None, batching: str = "packing", seed: int = 0, world: int = 1) -> Schedule:
    """The Schedule of a run over train rows of these token lengths.

    `batching`: packing | blocks (random order, padded per batch), length_grouped (transformers' length-grouped
    sampler), flat (one row per batch, no padding). With several ranks (`world`), micro_batches is per rank and
    the tokens are of all ranks.
    """
    if not lengths:
        raise ValueError("no training rows")
    steps, per_epoch, batches = trainer_steps(len(lengths), micro_batch, grad_accum, world, epochs, max_steps)
    full_epochs, rest = divmod(steps, per_epoch)
    rng = random.Random(seed)
    grouped = batching == "length_grouped"
    flat = batching == "flat"
    group = micro_batch * world * grad_accum   # the sampler's batch: all ranks' rows of one optimizer step
    real = padded = rows = 0
    if full_epochs:
        r, p, n = _epoch(lengths, _order(lengths, grouped, group, rng), micro_batch, batches * world, flat)
        real, padded, rows = r * full_epochs, p * full_epochs, n * full_epochs
    if rest:
        r, p, n = _epoch(lengths, _order(lengths, grouped, group, rng), micro_batch, rest * grad_accum * world, flat)
        real, padded, rows = real + r, padded + p, rows + n
    return Schedule(steps=steps, micro_batches=full_epochs * batches + rest * grad_accum, tokens=real,
                    padded_tokens=padded, rows=rows, widest=max(lengths), batching=batching)
