"""The benchmark suite behind ``python -m benchmarks.run``.

``tasks`` loads the real multi-view data sets and splits them, ``methods`` builds
every compared model, ``evaluate`` fits one model and measures it, ``report``
turns the measurements into markdown tables and plots.
"""
