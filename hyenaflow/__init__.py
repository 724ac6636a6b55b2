"""hyenaflow: the local stack and the `hyenaflow` command line."""
