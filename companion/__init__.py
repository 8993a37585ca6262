"""Companion package of the *Gated Memory* course.

One module per idea:

* ``companion.activations`` – numerically stable sigmoid / tanh and their derivatives;
* ``companion.cells`` – the table of cell kinds that everything else reads;
* ``companion.rnn``, ``companion.lstm``, ``companion.gru``, ``companion.cifg`` – NumPy cells,
  forward and backward (one step and a whole sequence), in PyTorch's parameter layout and gate
  order (the CIFG, which torch lacks, in the LSTM's order without the input gate);
* ``companion.fast`` – the fast sequence kernels behind the cells' ``forward`` / ``backward``;
* ``companion.layers`` – stacked, bidirectional, variable-length layers built on the cells;
* ``companion.interop`` – copy parameters between ``torch.nn`` modules and NumPy dicts;
* ``companion.gradients`` – finite differences, a readable gradcheck, Jacobian norms through
  time, clipping by global norm;
* ``companion.tasks`` – synthetic sequence tasks (the gap task, the adding problem, the copy
  task);
* ``companion.sizing`` – parameter counts, matched hidden sizes, forget-gate bias rows;
* ``companion.corpus`` and ``companion.softmax`` – the course's English corpus and its
  characters; perplexity and sampling with a temperature (NumPy);
* ``companion.models`` and ``companion.training`` – the torch models (any kind of cell) and the
  one training loop that fits them;
* ``companion.experiments`` – ``python -m companion.experiments --full``: chapter 6's
  resumable RNN / LSTM / GRU / CIFG sweep;
* ``companion.charlm`` – chapter 7's character-level language model: training, evaluation,
  generation;
* ``companion.plots`` – the course's colour-blind-safe plot style;
* ``companion.exercises`` – the exercise registry, checks, hints and reference solutions;
* ``companion.grader`` – ``python -m companion grade``: grade notebooks in fresh kernels;
* ``companion.bench`` – ``python -m companion.bench``: the NumPy cells against ``torch.nn``;
* ``companion.timing`` – ``python -m companion.timing``: how long each lesson takes.
"""

__version__ = "0.1.0"
