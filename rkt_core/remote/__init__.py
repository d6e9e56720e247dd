"""Getting things from remote servers: the HTTP client with rkt's TLS, redirect and credential
policy (:mod:`.httpclient`), resumable downloads (:mod:`.download`), appc meta discovery
(:mod:`.discovery`), the progress bar (:mod:`.progress`), and an image with its signature from
http(s) URLs (:mod:`.fetch`). Which fetcher runs, the pull policy, the signature check and the
import are stage0's (:mod:`rkt_core.stage0.fetch`)."""
