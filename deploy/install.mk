# Install vigil as a host service. Included by the top-level Makefile.
#
#   sudo make install                 binary, systemd unit, config (kept if present)
#   make install DESTDIR=/tmp/pkg     stage into a package root instead
#
# Then: systemctl daemon-reload && systemctl enable --now vigil

DESTDIR    ?=
BIN        ?= bin/vigil
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DOCDIR     ?= $(PREFIX)/share/doc/vigil
UNITDIR    ?= /etc/systemd/system
CONFDIR    ?= /etc/vigil
INSTALL    ?= install

.PHONY: install uninstall

install: build
	$(INSTALL) -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/vigil
	@# The unit names the installed paths, so a PREFIX other than /usr/local still runs.
	$(INSTALL) -d $(DESTDIR)$(UNITDIR)
	sed -e 's#/usr/local/bin/vigil#$(BINDIR)/vigil#' -e 's#/usr/local/share/doc/vigil#$(DOCDIR)#' \
		-e 's#/etc/vigil/vigil.yaml#$(CONFDIR)/vigil.yaml#' \
		deploy/systemd/vigil.service > $(DESTDIR)$(UNITDIR)/vigil.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/vigil.service
	$(INSTALL) -D -m 0644 docs/deploy.md $(DESTDIR)$(DOCDIR)/deploy.md
	@# Never overwrite an operator's configuration: a new example goes beside it.
	@# 0640: it may hold sink credentials.
	@if [ -e $(DESTDIR)$(CONFDIR)/vigil.yaml ]; then \
		$(INSTALL) -D -m 0640 deploy/vigil.yaml $(DESTDIR)$(CONFDIR)/vigil.yaml.example; \
		echo "kept $(DESTDIR)$(CONFDIR)/vigil.yaml; the current example is vigil.yaml.example"; \
	else \
		$(INSTALL) -D -m 0640 deploy/vigil.yaml $(DESTDIR)$(CONFDIR)/vigil.yaml; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vigil $(DESTDIR)$(UNITDIR)/vigil.service $(DESTDIR)$(DOCDIR)/deploy.md
	@echo "kept $(DESTDIR)$(CONFDIR) (configuration)"
