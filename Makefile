# Two entry points (see README): `make demo` installs everything and runs the example,
# `make test` installs everything and runs the whole test suite.

VENV       ?= .venv
PYTHON     ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PLUGINS    := $(sort $(dir $(wildcard rkt_plugins/*/pyproject.toml)))

# Real components the runtime and its tests use (DESIGN.md, "Real components").
DEB_PACKAGES := busybox-static gnupg systemd systemd-container containernetworking-plugins \
	iptables iproute2 skopeo umoci docker-registry apache2-utils qemu-system-x86 linux-image-amd64 \
	swtpm swtpm-tools tpm2-tools debootstrap xz-utils bzip2 python3-venv runc crun cpio

.PHONY: setup deb venv demo test clean

setup: deb venv

deb:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q "install ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:" $$missing; \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $$missing; \
	fi

venv:
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]' $(foreach p,$(PLUGINS),-e $(p))
	# Editable installs are not byte-compiled; compile now so start-up never compiles
	# (PYTHONDONTWRITEBYTECODE would otherwise make every run pay for it).
	$(VENV)/bin/python -m compileall -q rkt_core rkt_plugins

demo: setup
	$(VENV)/bin/python scripts/demo.py

test: setup
	RKT_TESTS_STRICT=1 $(VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) demo
