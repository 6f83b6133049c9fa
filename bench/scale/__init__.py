"""The scale harness (issue 17): the real pieces of an installation as separate processes,
many domains due at once, faults injected, figures printed. `python -m bench.scale --help`;
docs/scaling.md has the figures and the sizing guide."""
