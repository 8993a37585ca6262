"""Companion package of the *Gated Memory* course.

One module per idea:

* ``companion.activations`` – numerically stable sigmoid / tanh and their derivatives;
* ``companion.rnn``, ``companion.lstm``, ``companion.gru`` – NumPy cells, forward and backward
  (one step and a whole sequence), in PyTorch's parameter layout and gate order;
* ``companion.fast`` – the fast sequence kernels behind the cells' ``forward`` / ``backward``;
* ``companion.interop`` – copy parameters between ``torch.nn`` modules and NumPy dicts;
* ``companion.gradients`` – finite differences, a readable gradcheck, Jacobian norms through
  time, clipping by global norm;
* ``companion.tasks`` and ``companion.training`` – synthetic sequence tasks (the gap task,
  the adding problem, the copy task) and a small torch training loop;
* ``companion.experiments`` – ``python -m companion.experiments --full``: chapter 6's
  resumable RNN / LSTM / GRU sweep;
* ``companion.charlm`` – chapter 7's character-level language model and its corpus;
* ``companion.plots`` – the course's colour-blind-safe plot style;
* ``companion.exercises`` – the exercise registry, checks, hints and reference solutions;
* ``companion.grader`` – ``python -m companion grade``: grade notebooks in fresh kernels;
* ``companion.bench`` – ``python -m companion.bench``: the NumPy cells against ``torch.nn``;
* ``companion.timing`` – ``python -m companion.timing``: how long each lesson takes.
"""

__version__ = "0.1.0"
