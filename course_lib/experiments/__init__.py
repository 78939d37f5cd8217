"""One module per lesson experiment, each built on the core and never on another lesson's module.

- ``recipes`` (notebook 04): the article's eight improvements as data; the ladder and leave-one-out.
- ``latent_sweep`` (05): VAEs over latent dimension x beta, trained once and cached.
- ``latent_explorers``, ``latent_map_explorers`` (05): the ipywidgets explorers of that sweep.
- ``pixel_vs_latent`` (06): pixel-space against latent-space diffusion under the same training budget.
- ``claims``, ``claim_verdicts`` (07): the article's AE-vs-VAE table, measured and judged claim by claim.

Lesson numbers appear here and nowhere else in course_lib; the benchmarks call these same functions.
"""
