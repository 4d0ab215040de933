"""Batch prediction with a TensorFlow model on Beam: the package that `template/main.py` runs.

Three lives that never meet at run time, and the one object they share:

* `launch/`: what runs at launch (parameters, checks, launch mode, summary); it produces
* `config.JobConfig`: everything the job needs, checked; from which
* `job/`: what runs on workers (the graph and its transforms) is built.

Both use `model/` (the model behind its signature) and `data/` (the data types the stages pass,
and the decoders that make them), and read files through `reading/`. `errors` holds every error
raised on purpose; `compat` every private API of Beam, TensorFlow and Keras used.

Imports run one way only: launch -> job -> config -> reading -> data -> model -> errors, compat
(`tests/pipeline/test_layout.py` checks it).
"""
