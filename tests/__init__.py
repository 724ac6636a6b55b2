"""hyenaflow tests. A regular package: smdebug-rulesconfig (a sagemaker-core dependency) installs a
top-level `tests` package into site-packages, which would otherwise shadow this folder."""
