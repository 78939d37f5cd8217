"""course_lib: the tested library behind the course "Faster diffusion with autoencoders".

One concept per module: ``config`` (FAST mode, folders), ``device`` (device and seeds), ``data``,
``augment``, ``models``, ``losses``, ``train``, ``evaluate``, ``baselines`` (PCA), ``checkpoints``,
``viz``. Notebooks import what they teach from here.
"""

__version__ = "0.1.0"
