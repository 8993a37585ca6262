"""Companion package of the *Gated Memory* course.

One module per idea:

* ``companion.activations`` – numerically stable sigmoid / tanh and their derivatives;
* ``companion.exercises``   – the exercise registry, checks, hints and reference solutions;

(further modules – cells, gradients, tasks, grader – are documented in their own files).
"""

__version__ = "0.1.0"
