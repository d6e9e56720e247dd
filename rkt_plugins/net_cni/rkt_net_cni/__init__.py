"""Contained pod networking with CNI plugins (``--net=default``, user networks, ``--port``)."""
