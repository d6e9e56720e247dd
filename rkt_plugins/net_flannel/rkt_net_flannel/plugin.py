"""rkt plugin entry of rkt-net-flannel. It implements no rkt hook: what it provides is the
CNI plugin type ``flannel`` (entry point group ``rkt.cni_plugins``, see :mod:`.cni`), which
rkt-net-cni runs for networks of that type. Registering here makes it show up in
``rkt plugins`` and lets ``--disable-plugin=net-flannel`` switch the type off."""
