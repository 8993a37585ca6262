"""The grader: ``python -m companion grade`` (see the README's "Grading" section).

- :mod:`~companion.grading.notebooks` reads submissions (never raising on a broken one);
- :mod:`~companion.grading.run` grades each in its own worker process and temporary folder;
- :mod:`~companion.grading.worker` runs one notebook in a kernel, has the kernel evaluate the
  learner's functions on the grader's cases, and judges the plain data it gets back with
  :func:`companion.exercises.core.verdict`, the very function ``check`` uses;
- :mod:`~companion.grading.codec` is the only way data comes back from a kernel (JSON,
  base64 arrays, bounded, never pickle);
- :mod:`~companion.grading.sandbox` and :mod:`~companion.grading.launch` confine a kernel;
- :mod:`~companion.grading.output` writes the table, gradebooks and Gradescope results;
- :mod:`~companion.grading.autograder` writes a Gradescope autograder folder.
"""
