"""rkt's public pytest kit, for rkt's own tests and for plugin authors: fixtures
(:mod:`.pytest_plugin`, registered with pytest by rkt-core's ``pytest11`` entry point), the
``rkt`` runner (:mod:`.runner`), image builders (:mod:`.aci`, :mod:`.gpg`, :mod:`.registry`),
servers (:mod:`.httpserver`), and the contract suites every plugin of a kind passes
(:mod:`.stage1_contract`, :mod:`.fetcher_contract`, :mod:`.verifier_contract`,
:mod:`.network_contract`)."""
