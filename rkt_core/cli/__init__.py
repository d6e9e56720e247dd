"""The ``rkt`` command line: one module per verb."""
