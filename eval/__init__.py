"""policyqa.eval: the benchmark suite behind ``policyqa eval``, on top of the serving stages.

Load a benchmark (:mod:`~policyqa.eval.datasets`), split its questions
(:mod:`~policyqa.eval.splits`), run systems on it (:mod:`~policyqa.eval.runner`, the registry in
:mod:`~policyqa.eval.systems`, the backends in :mod:`~policyqa.eval.backends`), score
(:mod:`~policyqa.eval.metrics`) and report (:mod:`~policyqa.eval.report`);
:mod:`~policyqa.eval.suite` runs several benchmarks as one (a suite file, one table, the stage
check). :mod:`policyqa.eval.bench` holds the performance
and robustness tools. Nothing on the serving path imports this package, and this face imports
none of its modules: ``import policyqa.eval.metrics`` loads the metrics alone, not the runner.
"""
