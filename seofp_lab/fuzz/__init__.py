"""A bounded, seeded fuzz harness for the model file, the config loader and the audio reader.

``seofp fuzz`` (``fuzz/cli.py``) makes cases (``fuzz/cases.py``), runs each in a memory-capped
worker process (``fuzz/worker.py``) under a timeout (``fuzz/runner.py``) and counts the outcomes:
clean refusal, success, NaN output, traceback, memory over the cap, crash, hang. Anything but the
first two is a defect. docs/fuzzing.md gives the commands and the counts of a long run.
"""

from seofp_lab.fuzz.worker import BAD, OUTCOMES

__all__ = ["BAD", "OUTCOMES"]
