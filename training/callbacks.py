"""Trainer callbacks: rich progress (loss, tokens/s, ETA) and complete-checkpoint markers."""
from __future__ import annotations

import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback

from advisor.console import err
from advisor.textio import share_tree
from training import checkpoints


class RichProgress(TrainerCallback):
    """A progress bar on stderr (a log line per logging step when stderr is not a terminal)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.progress: Progress | None = None
        self.task = None
        self.loss: float | None = None
        self.t0 = 0.0
        self.tokens0 = 0
        self.step0 = 0

    def _rate(self, state) -> float:
        dt = time.perf_counter() - self.t0
        return (state.num_input_tokens_seen - self.tokens0) / dt if dt > 0 else 0.0

    def _fields(self, state) -> dict:
        return {"loss": "-" if self.loss is None else f"{self.loss:.4f}", "tps": f"{self._rate(state):,.0f}"}

    def on_train_begin(self, args, state, control, **kw):
        if not (self.enabled and state.is_world_process_zero):
            return
        self.t0, self.tokens0, self.step0 = time.perf_counter(), state.num_input_tokens_seen, state.global_step
        if err.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tps]} tok/s"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=err, transient=False)
            self.progress.start()
            self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step,
                                               **self._fields(state))

    def on_step_end(self, args, state, control, **kw):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, **self._fields(state))

    def on_log(self, args, state, control, logs=None, **kw):
        if not (self.enabled and state.is_world_process_zero) or not logs:
            return
        if "loss" in logs:
            self.loss = float(logs["loss"])
        if self.progress is not None:
            self.progress.update(self.task, **self._fields(state))
        elif "loss" in logs or "eval_loss" in logs:
            done = state.global_step - self.step0
            left = state.max_steps - state.global_step
            dt = time.perf_counter() - self.t0
            eta = f"{dt / done * left:.0f}s" if done else "?"
            what = f"loss {logs['loss']:.4f}" if "loss" in logs else f"eval_loss {logs['eval_loss']:.4f}"
            err.print(f"step {state.global_step}/{state.max_steps}  {what}  {self._rate(state):,.0f} tok/s  eta {eta}")

    def on_train_end(self, args, state, control, **kw):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class CompleteCheckpoints(TrainerCallback):
    """After every save: wait for all ranks, then rank 0 marks checkpoint-N complete.

    Also skips the checkpoint transformers writes at the last step when that step is off the
    save_steps grid (DefaultFlowCallback saves there whatever save_steps says): tunepath's execute()
    saves the final model right after training, so that checkpoint (weights, optimizer state, fsync)
    only cost time inside the measured training loop. A kill after the last step resumes from the
    newest grid checkpoint, as a kill anywhere else does.
    """

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= state.max_steps and state.save_steps and state.global_step % state.save_steps:
            control.should_save = False

    def on_save(self, args, state, control, **kw):
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # other ranks write their rng_state_<rank>.pth into the same directory
        if state.is_world_process_zero:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                share_tree(ckpt)  # safetensors writes 0600; a colleague resuming reads it too
                checkpoints.mark_complete(ckpt, state.global_step)


class Meter(TrainerCallback):
    """Tokens and seconds of this session's training (the Trainer state also holds a resumed run's earlier steps)."""

    t0 = seconds = 0.0
    tokens0 = tokens = 0

    def on_train_begin(self, args, state, control, **kw):
        self.t0, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen

    def on_train_end(self, args, state, control, **kw):
        self.seconds = time.perf_counter() - self.t0
        self.tokens = state.num_input_tokens_seen - self.tokens0
