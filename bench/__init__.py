"""KDBench engine: knows no particular task or method.

Tasks live in :mod:`tasks`, methods in :mod:`baselines`; both register
themselves into the registries of :mod:`bench.registry` when imported.
"""

__version__ = "0.1.0"
