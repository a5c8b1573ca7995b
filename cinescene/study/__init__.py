"""The seed's experiment as one command: base against LoRA against full fine-tuning, on one dataset.

``python -m cinescene study --config FILE --out DIR`` trains every arm with the same data, steps and seeds
(each arm one ordinary training run under ``DIR/runs``), evaluates the base model and every arm on the same
held-out items with every metric, and writes ``DIR/report.md``, ``DIR/report.json`` and plots: each metric per arm
with paired bootstrap intervals, the differences between arms, the training cost, and the validation scores over
the training steps. Run again, the same command resumes: finished arms are not retrained, an interrupted arm
continues from its checkpoint, a finished evaluation is reused.

``config`` (the settings file), ``items`` (the held-out items), ``evaluation`` (every arm through ``evaluate``),
``stats`` (the bootstrap), ``cost`` (what training cost), ``report`` and ``plots`` (the outputs), ``runner``
(the order of it all, and resuming).
"""
