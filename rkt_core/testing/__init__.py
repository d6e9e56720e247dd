"""Public pytest helpers and contract suites for rkt's own tests and for plugin authors."""
