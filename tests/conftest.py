"""Shared test setup. Tests drive tunepath through its public CLI (see helpers.py) and API."""
import os

os.environ.setdefault("TUNEPATH_DEBUG", "1")  # a bug in a test shows its traceback
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may come from the hub here
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
