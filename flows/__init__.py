"""Prefect flows over the autoloop engine: ``collect``, ``train``, ``evaluate``, ``promote`` and ``cycle``.

Flows are thin: each task calls one autoloop function. This is the only package that imports ``prefect``.
"""

import autoloop  # noqa: F401  (sets telemetry and start-up defaults before Prefect reads its settings)
