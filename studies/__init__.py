"""The studies: experiments run over the library, each with its README and its score files in docs/results/.

A package so that the drivers share code without touching ``sys.path``: run each from the repository root as
``python -m studies.<study>.<script>`` (e.g. ``python -m studies.scenes.run --list``).

- ``common``: what the drivers share (the two arms' overrides, the commit a score file records, locks, committing
  score files, a worker's setup and command line);
- ``stats``: the statistics and number formats of the reports (Welch's t-test, mean ± std), the emoji splits'
  labels;
- ``emoji32``: the reproduction study (the paper's Table 1 in miniature); ``scenes``: procedural scenes whose
  captions state every factor; ``fashion_mnist``: the end-to-end run.
"""
