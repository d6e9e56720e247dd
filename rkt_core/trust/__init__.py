"""Trusted keys: the keystore as rkt lays it out (:mod:`.keystore`) and getting keys into it, by
``rkt trust`` or when an image name is fetched (:mod:`.pubkeys`). Signatures are checked by the
built-in OpenPGP verifier against these keys."""
