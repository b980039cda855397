"""Training, and the probes that chose the shipped models' settings: never on the serving path.

- :mod:`~policyqa.train.rerank`: the feature reranker's weights (``retriever/data/rerank_features.json``);
- :mod:`~policyqa.train.answer`: the answer span models (``answer/data/answer_spans*.json``);
- :mod:`~policyqa.train.reader`: the built-in reader's LoRA adapter (``answer/data/reader_lora.safetensors``);
- :mod:`~policyqa.train.cross_encoder`: a cross-encoder on the first layers of e5-small (a LoRA
  adapter; collect, fit, select);
- :mod:`~policyqa.train.probe_answer_spans`, :mod:`~policyqa.train.probe_sentence_rerank`,
  :mod:`~policyqa.train.probe_fusion`, :mod:`~policyqa.train.rerank_ceiling`: the research probes
  behind those choices (their results are in ``eval/results/`` beside their commands);
- :mod:`~policyqa.train.judge`: how every fitted number is judged: the suite's questions with
  their train/test half, document-level RR@10, and the choice by the worst benchmark.

Each is run as ``python -m policyqa.train.<name>``; they need the ``train`` extra
(``pip install 'policyqa[train]'``, scikit-learn) and fit on the ``train`` half of each benchmark
(:func:`policyqa.eval.splits.in_split`), so that the suite scores them on questions they never saw.
"""
