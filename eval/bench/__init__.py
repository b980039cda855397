"""Performance and robustness tools (apart from the benchmark suite): scale, encoder and search
speed, load tests of the HTTP API, its schemathesis fuzz run and the hardening findings replayed
against a live server. Each is ``python -m policyqa.eval.bench.<name>``; results in ``eval/results/``."""
