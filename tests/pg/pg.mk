# PostgreSQL (tests/pg), included by the Makefile.
#
#   make postgres-server   install Debian's PostgreSQL server binaries if missing (no cluster
#                          is created and no service started: the tests run their own servers)
#   make pg-tests          the race test (tests/race) and the PostgreSQL stores of the Python and Node hosts
#                          (examples/python-host/pgstore.py, examples/node-host/pgstore.mjs) against
#                          a throwaway server: tests/pg/with-postgres.sh starts one in a fresh
#                          temporary directory, runs the suites with TWOFA_PG_URL set, and stops
#                          and removes it whether they pass or fail
#
# Any command can run against such a server the same way: tests/pg/with-postgres.sh COMMAND...

.PHONY: postgres-server pg-setup pg-tests

# Debian's postgresql package would create and start a cluster of its own ("main"), unless
# createcluster.d says not to; that file is written first (the way the postgres Docker images do).
postgres-server:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing: postgresql (no cluster, no service)"; \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo mkdir -p /etc/postgresql-common/createcluster.d && \
		echo "create_main_cluster = false" | $$sudo tee /etc/postgresql-common/createcluster.d/twofa-no-main-cluster.conf >/dev/null && \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "no /usr/lib/postgresql/*/bin/initdb after installing postgresql"; exit 1; }

# The suites, each timed like the Makefile's (one failure ends the run; the server is stopped
# and its directory removed all the same).
PG_PYTHON_SUITE = $(PY) -m pytest -q -p no:cacheprovider -W error examples/python-host/check_pgstore.py
PG_NODE_SUITE = (cd examples/node-host && node --test --test-reporter=dot test-pg/)

PG_RACE_SUITE = $(PY) tests/race/race.py

# What every PostgreSQL suite needs: the server binaries, the Python package in the test venv and
# the Node host's packages (pg).
pg-setup: postgres-server $(PY_VENV)/ready node-setup
	$(PY) -m pip install --quiet --disable-pip-version-check ./bindings/python
	cd examples/node-host && $(NPM_CI)

# The stores' suites and the race test (tests/race) on one server.
pg-tests: pg-setup
	tests/pg/with-postgres.sh bash -euo pipefail -c '$(call suite,pg-python,$(PG_PYTHON_SUITE)); $(call suite,pg-node,$(PG_NODE_SUITE)); $(call suite,race,$(PG_RACE_SUITE))'
